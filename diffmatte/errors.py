"""Exceptions raised by the engine."""


class WeightsError(ValueError):
    """A checkpoint cannot be used: unreadable, unsafe, or not matching the architecture."""


class DefaultWeightsMissing(FileNotFoundError):
    """``weights="default"`` was asked for but no bundled default model is installed."""


class Cancelled(RuntimeError):
    """A refine was cancelled between two diffusion steps."""
