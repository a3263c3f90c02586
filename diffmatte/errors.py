"""Exceptions raised by the engine."""


class WeightsError(ValueError):
    """A checkpoint cannot be used: unreadable, unsafe, or not matching the architecture."""


class DefaultWeightsMissing(FileNotFoundError):
    """``weights="default"`` was asked for but no bundled default model is installed."""


class Cancelled(RuntimeError):
    """A refine was cancelled between two diffusion steps."""


class InputError(ValueError):
    """The image, trimap or a refine argument given to the engine is unusable. Only this
    ValueError means "the caller's input"; any other error out of a refine is the engine's
    own (the service answers ``invalid_input`` for this one only)."""
