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


#: The optional extras of pyproject.toml that the default install (``installer/install.py``)
#: leaves out, with the installer flag that adds each (None: pip only).
EXTRA_INSTALLER_FLAGS = {"eval": "--eval", "ray": None, "test": "--test", "walker": None}


def missing_extra(feature: str, package: str, extra: str) -> str:
    """The message for ``feature`` run without ``package``, which only the optional ``extra``
    installs: what is missing, why, and the command that adds it."""
    flag = EXTRA_INSTALLER_FLAGS.get(extra)
    how = f"python3 installer/install.py {flag}, or " if flag else ""
    return (f"{feature} needs {package}, from the optional '{extra}' extra, which the default install "
            f"leaves out: {how}.venv/bin/pip install -e '.[{extra}]' in the checkout "
            f"(pip install 'refine-matte[{extra}]' elsewhere)")
