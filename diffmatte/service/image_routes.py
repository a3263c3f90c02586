"""The image routes: trimaps from a mask or strokes, SAM, and the cut-out of a matte."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from fastapi import FastAPI
from fastapi.responses import Response

from . import imaging
from .errors import InvalidInput, ServiceError, Unavailable
from .sam import import_trimap
from .schema import CutoutBody, MaskBody, SamBody, SamEmbedBody, ScribbleBody
from .trimap_stream import Compute, progress_response


def add_image_routes(app: FastAPI, service: Any) -> None:
    """Add the /v1/trimap, /v1/sam and /v1/cutout routes, bound to ``service`` (an ``app.Service``)."""
    _add_trimap_routes(app, service)
    _add_sam_routes(app, service)
    _add_cutout_route(app, service)


def _add_trimap_routes(app: FastAPI, service: Any) -> None:
    # With "progress": true in the body the answer is the computation's progress and then
    # the PNG, as server-sent events (trimap_stream); else the PNG itself.
    @app.post("/v1/trimap/mask")
    def trimap_mask(body: MaskBody) -> Response:
        compute = lambda check: _mask_trimap(service, body, check)  # noqa: E731
        return progress_response(compute, service.config.heartbeat) if body.progress else _plain(compute)

    @app.post("/v1/trimap/scribbles")
    def trimap_scribbles(body: ScribbleBody) -> Response:
        compute = lambda check: _scribble_trimap(service, body, check)  # noqa: E731
        return progress_response(compute, service.config.heartbeat) if body.progress else _plain(compute)


def _plain(compute: Compute) -> Response:
    """The PNG answer of a trimap computed without anyone following its progress."""
    png, headers = compute(lambda fraction: None)
    return imaging.png_response(png, headers)


def _mask_trimap(service: Any, body: MaskBody, check: Callable[[float], None]) -> Tuple[bytes, Dict[str, str]]:
    """(PNG, headers) of /v1/trimap/mask; ``check(fraction)`` follows the work (decoding the
    images, then the trimap's own progress: trimap.progress)."""
    tm = import_trimap()
    from trimap.progress import part, report, reporting

    limit = service.config.max_trimap_pixels
    with reporting(check):
        mask = service.decode_grey(body.mask, "mask", limit)
        report(0.02)  # the shares: decoding and encoding against the trimap at 24 MP
        image = None
        if body.image is not None:
            _, image = service.decode_rgb(body.image, "image", limit)
            imaging.check_same_size(image, mask, "image", "mask")
        if body.edge != "exact" and image is None:
            raise InvalidInput(f"trimap from mask: edge={body.edge!r} needs the image (send image=...)")
        report(0.12)
        notes: List[str] = []
        try:
            with part(0.12, 0.97):
                if body.edge == "exact":
                    result, edge = tm.from_mask(mask, band=body.band, adaptive=body.adaptive, image=image), "exact"
                else:
                    result, edge = tm.read_selection(mask, image, band=body.band, adaptive=body.adaptive,
                                                     edge=body.edge, report=notes,
                                                     sam_box=_sam_box(service, image, body.band))
        except ValueError as exc:
            raise InvalidInput(f"trimap from mask: {exc}") from None
        png = _check_trimap_output(result, "trimap.from_mask")
    return png, {"X-Trimap-Edge": edge, **_warning_header(notes)}


def _scribble_trimap(service: Any, body: ScribbleBody,
                     check: Callable[[float], None]) -> Tuple[bytes, Dict[str, str]]:
    """(PNG, headers) of /v1/trimap/scribbles; ``check`` as in :func:`_mask_trimap`."""
    tm = import_trimap()
    from trimap.progress import part, report, reporting

    limit = service.config.max_trimap_pixels
    with reporting(check):
        _, image = service.decode_rgb(body.image, "image", limit)
        maps: Dict[str, Any] = {}
        for name in ("fg", "bg", "unknown"):
            value = getattr(body, name)
            if value is None:
                maps[name] = None
                continue
            arr = service.decode_grey(value, name, limit)
            imaging.check_same_size(image, arr, "image", name)
            maps[name] = arr > 127
        report(0.12)
        notes: List[str] = []
        try:
            # Strokes go through the rough-input path (colour models + graph cut): with a
            # few strokes the random walker left most of a photo unknown (issue #27).
            with part(0.12, 0.97):
                result = tm.from_region(image, None, band=body.band, fg=maps["fg"], bg=maps["bg"],
                                        unknown=maps["unknown"], report=notes)
        except ValueError as exc:
            raise InvalidInput(f"trimap from scribbles: {exc}") from None
        png = _check_trimap_output(result, "trimap.from_region")
    return png, _warning_header(notes)


def _sam_box(service: Any, image: Any, band: Optional[float]) -> Callable[[Tuple[int, ...]], Any]:
    """``trimap.read_selection``'s ``sam_box``: the trimap of SAM's box prompt from the service's
    SAM (its checkpoint, device and embedding cache); None without one (the colour models
    then segment the rectangle, as any lasso)."""
    def run(box: Tuple[int, ...]) -> Any:
        try:
            prompter = service.sam.load()
        except Unavailable:
            return None
        return service.with_device(lambda: prompter.trimap(image, box=list(box), band=band))
    return run


def _warning_header(notes: List[str]) -> Dict[str, str]:
    """``X-Trimap-Warning``: what the trimap step wants the user to know (one line, ASCII)."""
    if not notes:
        return {}
    text = " / ".join(notes).encode("ascii", "replace").decode("ascii")
    return {"X-Trimap-Warning": " ".join(text.split())}


def _add_sam_routes(app: FastAPI, service: Any) -> None:
    @app.post("/v1/sam/embed")
    def sam_embed(body: SamEmbedBody) -> Dict[str, Any]:
        data, image = service.decode_rgb(body.image, "image")
        prompter = service.sam.load()
        key = service.sam.remember(data, image)
        service.with_device(lambda: prompter.set_image(image))
        return {"image_id": key, "width": int(image.shape[1]), "height": int(image.shape[0])}

    @app.post("/v1/sam/trimap")
    def sam_trimap(body: SamBody) -> Response:
        if body.image is not None:
            data, image = service.decode_rgb(body.image, "image")
            service.sam.remember(data, image)
        elif body.image_id is not None:
            image = service.sam.recall(body.image_id)
            if image is None:
                raise ServiceError(f"unknown or evicted image_id '{body.image_id}'; send the image again", 404)
        else:
            raise InvalidInput("send 'image' or an 'image_id' from /v1/sam/embed")
        prompter = service.sam.load()
        points = [list(p) for p in body.points] or None
        labels = list(body.labels) or None
        box = list(body.box) if body.box is not None else None

        def run() -> Any:
            if body.output == "mask":
                logits, _ = prompter.predict_logits(image, points=points, labels=labels, box=box)
                import numpy as np
                return (np.asarray(logits) > 0).astype(np.uint8) * 255
            return prompter.trimap(image, points=points, labels=labels, box=box, band=body.band)

        try:
            result = service.with_device(run)
        except ValueError as exc:
            raise InvalidInput(f"SAM: {exc}") from None
        return imaging.png_response(_check_trimap_output(result, f"SamPrompter.{body.output}"))


def _add_cutout_route(app: FastAPI, service: Any) -> None:
    @app.post("/v1/cutout")
    def cutout(body: CutoutBody) -> Response:
        import numpy as np

        from diffmatte.finish.cutout import finish
        from diffmatte.finish.edges import EdgeParams

        try:
            edges = EdgeParams.from_dict(body.edges)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if body.image is None and body.output == "rgba":
            raise InvalidInput("output 'rgba' needs the 'image'")
        alpha = imaging.decode_alpha(imaging.b64decode_field(body.alpha, "alpha"), "alpha",
                                     service.config.max_pixels)
        if body.output == "alpha":
            from diffmatte.finish.edges import apply_edges

            final = apply_edges(alpha, edges)
            return imaging.png_response(imaging.encode_png(np.rint(final * 65535.0).astype(np.uint16)))
        _, image = service.decode_rgb(body.image, "image")
        imaging.check_same_size(image, alpha, "image", "alpha")
        _, rgba = finish(image, alpha, edges=edges,
                        decontaminate=body.decontaminate, premultiplied=body.premultiplied)
        return imaging.png_response(imaging.encode_png(rgba))


def _check_trimap_output(result: Any, what: str) -> bytes:
    import numpy as np
    arr = np.asarray(result)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64) * (255.0 if arr.max(initial=0) <= 1.0 else 1.0)),
                      0, 255).astype(np.uint8)
    if arr.ndim != 2:
        raise ServiceError(f"{what} returned an array of shape {arr.shape}, expected H x W", 500)
    return imaging.encode_png(arr)
