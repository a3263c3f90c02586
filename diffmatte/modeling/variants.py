"""Registry of named DiffMatte architectures (timm-style: name -> config).

The four official variants reproduce the official configs field by field; ``lite`` is
this project's CPU-friendly variant used for the bundled default model.
"""
from __future__ import annotations

from typing import Any, Dict, List

from .config import ModelConfig

_VIT_DECODER: Dict[str, Any] = dict(downsample_in=(7, 32, 64, 128), time_channels=32, emb_channels=32, head_channels=16)
_RES_DECODER: Dict[str, Any] = dict(downsample_in=(7, 32, 64, 128, 128), time_channels=32, emb_channels=32, head_channels=16)

VARIANTS: Dict[str, ModelConfig] = {
    "ViTS": ModelConfig(name="ViTS", backbone="vit", in_chans=4, embed_dim=384, num_heads=6, img_size=512,
                        upsample_in=(384, 256, 128, 64, 32), **_VIT_DECODER),
    "ViTB": ModelConfig(name="ViTB", backbone="vit", in_chans=4, embed_dim=768, num_heads=12, img_size=512,
                        upsample_in=(768, 256, 128, 64, 32), **_VIT_DECODER),
    "ViTS_1024": ModelConfig(name="ViTS_1024", backbone="vit", in_chans=4, embed_dim=384, num_heads=6,
                             img_size=1024, upsample_in=(384, 256, 128, 64, 32), **_VIT_DECODER),
    "Res34": ModelConfig(name="Res34", backbone="resnet_d", in_chans=6, layers=(3, 4, 4, 2), stem=(32, 32, 64),
                         widths=(64, 128, 256, 512), spectral_norm=True,
                         upsample_in=(512, 256, 256, 128, 64, 32), **_RES_DECODER),
    # CPU-friendly: narrow ResNet-D encoder without spectral norm (trained from scratch)
    # and a decoder with half the official channels (the decoder dominates sampling cost).
    "lite": ModelConfig(name="lite", backbone="resnet_d", in_chans=6, layers=(2, 2, 2, 2), stem=(16, 16, 32),
                        widths=(32, 64, 128, 256), spectral_norm=False,
                        downsample_in=(7, 16, 32, 64, 64), upsample_in=(256, 128, 128, 64, 32, 16),
                        time_channels=32, emb_channels=32, head_channels=16),
}
# ``lite`` refining a classical alpha prior (diffmatte/prior/closed_form.py): closed-form (cycle 3, not
# shipped) and information flow (diffmatte/prior/information_flow.py; the bundled default since cycle 4).
VARIANTS["lite_cf"] = VARIANTS["lite"].replace(name="lite_cf", prior="cf")
VARIANTS["lite_ifm"] = VARIANTS["lite"].replace(name="lite_ifm", prior="ifm")

OFFICIAL = ("ViTS", "ViTB", "ViTS_1024", "Res34")


def get_config(name: str) -> ModelConfig:
    """Config of a named variant; raises KeyError listing the known names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown DiffMatte variant {name!r}; known: {', '.join(VARIANTS)}") from None


def list_variants() -> List[str]:
    return list(VARIANTS)
