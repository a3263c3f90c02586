"""Before/after picture of colour decontamination: hair and glass cut-outs, shot on a
saturated green background, placed on a saturated magenta one.

The composites come from the training generator's alpha shapes (hair strands grown
from a head, a glass body with its rim) with known foreground colours, so the picture
can use the true alpha: what remains visible is the colour method alone. Columns:
the shot, the cut-out with the raw image colours (green fringe), the cut-out through
diffmatte.finish.cutout (decontaminated), and the true foreground, each on magenta, with a
2x zoom of the edge below. The mean colour error in 0.05 < alpha < 0.95 is printed.

    python bench/cutout_figure.py docs/decontamination.png
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

GREEN = np.array([0.05, 0.85, 0.15], np.float32)
MAGENTA = np.array([0.85, 0.1, 0.75], np.float32)


def hair_sample(size: int, rng: np.random.Generator):
    from diffmatte.train.alpha_synth import polar_blob, strands

    body = polar_blob(size, rng, center=(size * 0.5, size * 0.62), radius=size * 0.3)
    hair = strands(size, rng, body, "hair")
    alpha = np.clip(1 - (1 - body) * (1 - hair), 0, 1).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    brown = np.dstack([0.55 + 0.25 * xx, 0.33 + 0.1 * yy, 0.12 + 0.05 * xx])   # auburn hair
    grain = ndi.gaussian_filter(rng.random((size, size)), 1.5)[..., None] * 0.25
    return alpha, np.clip(brown + grain - 0.12, 0, 1).astype(np.float32)


def glass_sample(size: int, rng: np.random.Generator):
    from diffmatte.train.alpha_synth import glass

    for _ in range(200):  # a whole glass in frame, big enough to see its rim
        alpha = glass(size, rng)
        border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
        if border.max() < 0.01 and (alpha > 0.02).mean() > 0.25:
            break
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    tint = np.dstack([0.92 - 0.1 * yy, 0.95 - 0.05 * xx, 0.98 + 0 * xx])  # cool, bright glass
    return alpha, np.clip(tint, 0, 1).astype(np.float32)


def place(rgb: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return rgb * alpha[..., None] + bg * (1 - alpha[..., None])


def to8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)

    from diffmatte.finish.cutout import make_cutout

    rng = np.random.default_rng(args.seed)
    s = args.size
    tiles, labels = [], ["shot on green", "cut-out, raw colours", "cut-out, decontaminated", "true foreground"]
    for name, (alpha, fg) in (("hair", hair_sample(s, rng)), ("glass", glass_sample(s, rng))):
        shot = to8(place(fg, alpha, GREEN))
        raw = make_cutout(shot, alpha, decontaminate=0.0)
        clean = make_cutout(shot, alpha, decontaminate=1.0)
        band = (alpha > 0.05) & (alpha < 0.95)
        err = {k: float(np.abs(v[..., :3][band].astype(np.float32) / 255 - fg[band]).mean() * 255)
               for k, v in (("raw", raw), ("decontaminated", clean))}
        print(f"{name}: mean |colour - F| in 0.05<alpha<0.95: raw {err['raw']:.1f}, "
              f"decontaminated {err['decontaminated']:.1f} (0..255)")
        row = [shot]
        for rgba in (raw, clean):
            row.append(to8(place(rgba[..., :3].astype(np.float32) / 255, alpha, MAGENTA)))
        row.append(to8(place(fg, alpha, MAGENTA)))
        # zoom: the 1/4-size window around the busiest edge, shown at twice the size
        # zoom on the left outline at mid height: outside, edge and inside in one window
        ys, _ = np.nonzero(band)
        cy = int(np.median(ys))
        cx = int(np.nonzero(alpha[cy] > 0.02)[0].min())
        h = s // 4
        y0, x0 = min(max(cy - h // 2, 0), s - h), min(max(cx - h // 3, 0), s - h)
        zoom = [np.kron(t[y0:y0 + h, x0:x0 + h], np.ones((4, 4, 1), np.uint8))[:s, :s] for t in row]
        tiles.append((name, row, zoom, err))
    pad, head = 6, 18
    width = 4 * s + 5 * pad
    height = len(tiles) * (2 * s + 2 * pad + head) + head + pad
    sheet = Image.new("RGB", (width, height), (40, 40, 44))
    draw = ImageDraw.Draw(sheet)
    for i, text in enumerate(labels):
        draw.text((pad + i * (s + pad) + 4, 4), text, fill=(235, 235, 235))
    y = head
    for name, row, zoom, err in tiles:
        draw.text((pad + 4, y + 2), f"{name}: colour error in the soft edge {err['raw']:.1f} -> "
                  f"{err['decontaminated']:.1f} (of 255); lower row: 4x zoom", fill=(235, 235, 235))
        y += head
        for j, img in enumerate(row):
            sheet.paste(Image.fromarray(img), (pad + j * (s + pad), y))
        for j, img in enumerate(zoom):
            sheet.paste(Image.fromarray(img), (pad + j * (s + pad), y + s + pad))
        y += 2 * s + 2 * pad
    sheet.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
