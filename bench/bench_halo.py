#!/usr/bin/env python3
"""How much context a tile needs (#11): one decoder call on a tile with a halo vs the whole
image, and (ResNet encoders) encoder features of a tile vs the whole image.

    python bench/bench_halo.py [default|ViTS|Res34|lite ...] [--image GT04]

Uses a dev-set photo (``../shared/data/dev/alphamatting-real``, or $REFINE_MATTE_SHARED);
non-default variants get random weights. Prints max / mean |alpha difference| in a
224 x 256 core for each halo (docs/TILING.md, "How large a halo").
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEV = Path(os.environ.get("REFINE_MATTE_SHARED", ROOT.parent / "shared")) / "data" / "dev" / "alphamatting-real"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_tiled import load_variant  # noqa: E402
from diffmatte.evaluate.datasets import read_rgb, read_trimap_u8  # noqa: E402
from diffmatte.io.images import to_trimap  # noqa: E402
from diffmatte.modeling.model import Conditioning  # noqa: E402
from diffmatte.prior.solve import prior_for  # noqa: E402


def _crop(prior, r):
    """The tile's part of a prior model's (padded) prior, as the tiled sampler crops it; None
    for a model without one (a tile without it crashed the decoder of the default model)."""
    return None if prior is None else prior[..., r[0]:r[1], r[2]:r[3]]


def probe(variant: str, name: str) -> None:
    m = load_variant(variant, "cpu").model
    img = read_rgb(DEV / "input" / f"{name}.png")
    tri = to_trimap(read_trimap_u8(DEV / "trimap1" / f"{name}.png"))
    h, w = tri.shape
    with torch.inference_mode():
        it, tt = torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(tri)[None, None]
        c = m.condition(it, tt, prior_for(m.cfg.prior, it, tt))
        feats = m.encode(c)
        s = m.cfg.stride
        hp, wp = c.cond.shape[-2:]
        x = torch.randn((1, 1, h, w), generator=torch.Generator().manual_seed(0)) * 0.9 + 0.1 * (tt * 2 - 1)
        t = torch.tensor([0.5])
        whole = torch.sigmoid(m.decode(feats, c, x, t))
        core = (224, 448, 256, 512)

        def region(halo):
            return max(0, core[0] - halo), min(hp, core[1] + halo), max(0, core[2] - halo), min(wp, core[3] + halo)

        def cut(a, r):
            return a[..., core[0] - r[0]:core[1] - r[0], core[2] - r[2]:core[3] - r[2]]
        for halo in (0, 32, 64, 96, 128):
            y0, y1, x0, x1 = r = region(halo)
            cc = Conditioning(c.backbone_in[..., y0:y1, x0:x1], c.cond[..., y0:y1, x0:x1],
                              (min(y1, h) - y0, min(x1, w) - x0), _crop(c.prior, r))
            out = torch.sigmoid(m.decode(feats[..., y0 // s:y1 // s, x0 // s:x1 // s], cc,
                                         x[..., y0:min(y1, h), x0:min(x1, w)], t))
            d = (cut(out, r) - cut(whole, (0, 0, 0, 0))).abs()
            print(f"{variant} decoder halo {halo:3d}: max {d.max():.2e} mean {d.mean():.2e}", flush=True)
        if m.cfg.backbone != "resnet_d":
            return
        for halo in (0, 32, 64, 128, 192, 256):
            y0, y1, x0, x1 = r = region(halo)
            cc = Conditioning(c.backbone_in[..., y0:y1, x0:x1], c.cond[..., y0:y1, x0:x1], (y1 - y0, x1 - x0),
                              _crop(c.prior, r))
            f = m.encode(cc)[..., (core[0] - y0) // s:(core[1] - y0) // s, (core[2] - x0) // s:(core[3] - x0) // s]
            patched = feats.clone()
            patched[..., core[0] // s:core[1] // s, core[2] // s:core[3] // s] = f
            d_alpha = (torch.sigmoid(m.decode(patched, c, x, t)) - whole).abs()
            d_feat = (f - feats[..., core[0] // s:core[1] // s, core[2] // s:core[3] // s]).abs()
            print(f"{variant} encoder halo {halo:3d}: feature max {d_feat.max():.2e} (feature std {feats.std():.2e}), "
                  f"alpha max {d_alpha.max():.2e}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", default=["default"])
    ap.add_argument("--image", default="GT04")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for v in args.variants:
        probe(v, args.image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
