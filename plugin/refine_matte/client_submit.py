"""A refine's submission to an engine that may be older than the plugin (stdlib only): the
request fields it does not know yet are left out, and the user hears what that costs."""

from typing import Any, Callable, Dict, Optional

from .client_errors import EngineError, rejects_field

OLD_ENGINE_NO_WIDEN = ("the engine is older than this plugin, so the rough selection was refined in one "
                       "pass (hair tips and strands the band missed are not searched again); update the "
                       "engine (run the installer again) for the second pass")


def submit_refine(client: Any, image_png: bytes, trimap_png: bytes, options: Dict[str, Any], widen_band: bool,
                  band: Optional[float], on_warning: Optional[Callable[[str], None]]) -> str:
    """The job id of a refine queued on ``client`` (an EngineClient) with ``options`` (its
    ``submit_refine`` keywords), ``widen_band`` and ``band`` (the trimap's band radius, for the
    widening). An engine without ``widen_band`` answers 422: the refine runs once, and
    ``on_warning`` says why the result may be rougher; one that widens but without ``band``
    widens by the image's default band."""
    try:
        return client.submit_refine(image_png, trimap_png, widen_band=widen_band, band=band, **options)
    except EngineError as exc:
        if widen_band and rejects_field(exc, "widen_band"):
            job_id = client.submit_refine(image_png, trimap_png, **options)
            if on_warning is not None:
                on_warning(OLD_ENGINE_NO_WIDEN)
            return str(job_id)
        if widen_band and band is not None and rejects_field(exc, "band"):
            return str(client.submit_refine(image_png, trimap_png, widen_band=True, **options))
        raise
