"""The service's settings (:class:`ServiceConfig`) and the JSON bodies of its requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field

from trimap import MAX_BAND

API_VERSION = 1
MAX_STEPS = 1000  # the engine's own bound
MAX_EVENT_ID = 10**9  # far above any job's event count; bounds 'after' and Last-Event-ID
DEFAULT_SEED = 0



@dataclass
class ServiceConfig:
    """Limits and tunables of one service instance."""

    # A 45 MP camera photo (8256 x 5504) as PNG is ~60-140 MB; the engine's memory planner,
    # not these limits, bounds the refine itself (docs/TILING.md).
    max_body_mb: float = 256.0
    max_megapixels: float = 64.0
    # The trimap routes (mask, scribbles) run whole-image numpy / scipy work at about 60 bytes
    # a pixel: a 62 KB PNG of 7999 x 7999 zeros took 88 s and 3.6 GB there (issue #25). Their
    # images are refused from the header above this size, before any pixel is decoded. 25:
    # a 24 MP camera photo (6000 x 4000) must still get its trimap from a selection in the
    # docker (16 refused it with a 413: no Krita refine of such a photo at all).
    max_trimap_megapixels: float = 25.0
    # Host / Origin names served besides loopback ones ("*": any, for a service bound to all
    # interfaces on purpose); see gate.py. serve() adds a non-loopback --host itself.
    allowed_hosts: Tuple[str, ...] = ()
    max_queue: int = 8
    keep_finished: int = 32
    finished_ttl: float = 600.0
    heartbeat: float = 0.5
    shutdown_grace: float = 10.0
    sam_checkpoint: Any = None  # path, None (trimap.find_checkpoint) or a built SAM model
    sam_model_type: Optional[str] = None  # None: guessed from the file name, else vit_b
    sam_cache: int = 4
    device_wait: float = 300.0
    # Connection and request limits (see guard.py and gate.py for why each exists).
    max_connections: int = 256
    max_connections_per_client: int = 128
    head_timeout: float = 10.0  # seconds to deliver a complete request head
    keep_alive: float = 5.0  # idle seconds between requests on one connection
    max_active_requests: int = 64  # requests with the token in progress (event streams count)
    body_timeout: float = 30.0  # longest pause while a body is uploaded

    @property
    def max_body(self) -> int:
        return int(self.max_body_mb * 2**20)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)

    @property
    def max_trimap_pixels(self) -> int:
        return int(min(self.max_trimap_megapixels, self.max_megapixels) * 1e6)


# -- request bodies ---------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefineBody(_Body):
    image: str = Field(description="base64 image (PNG, JPEG, WEBP, TIFF or BMP)")
    trimap: str = Field(description="base64 greyscale trimap with values 0/128/255")
    steps: int = Field(10, ge=1, le=MAX_STEPS)
    # Seed 0 unless the request names one (null counts as "none"): the same request
    # gives the same matte, click after click; another seed asks for another draw.
    seed: Optional[int] = Field(0, ge=0, le=2**32 - 1)
    samples: int = Field(1, ge=1, le=8, description="average this many draws (seeds seed, seed+1, ...)")
    preview: bool = True
    preview_size: int = Field(256, ge=16, le=1024)
    quantize_trimap: bool = False
    widen_band: bool = Field(False, description="the trimap came from rough input (a lasso or rectangle read "
                                                "with a rough edge, strokes): where the first matte shows the "
                                                "band cut through partial alpha, the band grows and the matte "
                                                "is solved again (Engine.refine's widen_band). Leave it off for "
                                                "exact trimaps (a painted trimap, an exact mask, SAM)")
    band: Optional[float] = Field(None, ge=0, le=MAX_BAND, description="with widen_band: the band radius the trimap "
                                  "was made with (the trimap request's band), by which the band grows; "
                                  "default: the image's default band")


class MaskBody(_Body):
    mask: str
    band: Optional[float] = Field(None, ge=0, le=MAX_BAND)
    adaptive: bool = True
    image: Optional[str] = Field(None, description="optional base64 image: the band then follows the image")
    edge: str = Field("exact", pattern="^(exact|rough|auto)$",
                      description="exact: the outline is the subject's edge (SAM, layer mask); rough: the mask "
                                  "is a region around the subject (lasso, rectangle): its edge is found inside "
                                  "it; auto: decided from the image. rough and auto need the image")
    progress: bool = Field(False, description="answer with the computation's progress and then the PNG, "
                                              "as server-sent events (service/trimap_stream.py)")


class ScribbleBody(_Body):
    image: str
    fg: str
    bg: str
    unknown: Optional[str] = None
    band: Optional[float] = Field(None, ge=0, le=MAX_BAND)
    progress: bool = Field(False, description="as MaskBody's")


class SamEmbedBody(_Body):
    image: str


class CutoutBody(_Body):
    """``/v1/cutout``: the edge controls and the decontaminated cut-out of a finished matte
    (diffmatte.finish.cutout.finish, the path the CLI's --rgba takes); no engine run."""

    image: Optional[str] = Field(None, description="base64 image; needed for output 'rgba'")
    alpha: str = Field(description="base64 grey matte (8 or 16 bit), the engine's result")
    edges: Dict[str, float] = Field(default_factory=dict, description="shift / feather / contrast / smooth")
    decontaminate: float = Field(1.0, ge=0, le=1)
    premultiplied: bool = False
    output: str = Field("rgba", pattern="^(rgba|alpha)$")


class SamBody(_Body):
    image: Optional[str] = None
    image_id: Optional[str] = Field(None, max_length=128)
    points: List[Tuple[float, float]] = Field(default_factory=list, max_length=256)
    labels: List[int] = Field(default_factory=list, max_length=256)
    box: Optional[Tuple[float, float, float, float]] = None
    band: Optional[float] = Field(None, ge=0, le=MAX_BAND)
    output: str = Field("trimap", pattern="^(trimap|mask)$")
