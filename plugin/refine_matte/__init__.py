"""Refine Matte: Qt panel, host-adapter interface, engine client and standalone editor.

Importing this package is cheap and imports no Qt; inside Krita (which loads this
folder as a Python plugin) it registers the Refine Matte docker.
"""

__version__ = "0.1.0"

try:  # Krita exposes a `krita` module only inside its own Python.
    import krita as _krita  # type: ignore[import-not-found]
except ImportError:
    _krita = None

if _krita is not None:
    from .krita_plugin import register as _register

    _register()
