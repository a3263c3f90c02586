"""Inputs and the number check of the Krita host scenario's rough-lasso refine.

Run by tests/hosts/krita.sh with the engine environment's python (numpy, Pillow,
OpenCV and this checkout's ``trimap`` on the path):

    rough_photo.py prepare INPUT_DIR   photo.png + rough.png (+ gt.png) for the scenario
    rough_photo.py score OUT_DIR INPUT_DIR
                                       add the named check to OUT_DIR/results.json

``prepare``: with the dev photos (``../shared/data/dev/alphamatting-real`` beside the
checkout, or ``RM_DEV_DATA``), the photo is one with hair or twigs (``RM_DEV_PHOTO``,
default GT04: a troll's hair) and the rough selection a lasso that a quick hand draws
5-30 px outside the subject, holes filled (``trimap.simulate.lasso_from_alpha`` with
``np.random.default_rng(RM_LASSO_SEED)``, default seed 0); the ground truth is copied
next to them as gt.png (in the run folder, never in the repository). Without the dev
photos: the bundled astronaut sample and its trimap's foreground + band, no truth.

``score``: the whole-image SAD (sum |a - gt| / 1000, a in 0..1) of the mask that the
scenario read back from Krita after refine 1 (``mask-1.png``: Selection source, Edge
rough, the docker's defaults) and of the lasso itself; the check passes when the mask's
SAD is at most ``RATIO`` (0.5) times the lasso's. The same for the mask of the scenario's
Select All refine (``mask-all.png``: a subject that fills the frame leaves nothing outside
the selection to learn the background from, so the engine starts from the photo's focus,
trimap/focus.py), against the whole canvas's own SAD, at most ``RATIO_ALL`` times it (GT04
offline: 0.15x; before the focus start 0.62x). And for the mask of its rectangle refine
(``mask-rect.png``; ``box.json``: the rectangle bench's box for the photo,
``simulate.rectangle_from_alpha`` seeded as bench/rough_bench.py seeds it), against the box's
own SAD, at most ``RATIO_BOX`` times it (GT04 offline: 0.19x; 0.24x before the sure
background inside a box, trimap/sure_background.py). Without a truth the checks are skipped
with a NOTE, not failed.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
RATIO = 0.5
RATIO_ALL = 0.35
RATIO_BOX = 0.35
DEFAULT_PHOTO = "GT04"


def dev_data() -> Path:
    return Path(os.environ.get("RM_DEV_DATA") or ROOT.parent / "shared" / "data" / "dev" / "alphamatting-real")


def grey01(path) -> np.ndarray:
    """A PNG's first channel as float32 in 0..1 (the dataset's truths are RGB greys)."""
    im = Image.open(path)
    if im.mode not in ("L", "I;16", "I"):
        im = im.convert("RGB").getchannel(0)
    a = np.asarray(im, np.float32)
    return a / (65535.0 if a.max() > 255 else 255.0)


def sad(a: np.ndarray, gt: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - gt).sum() / 1000.0)


def prepare(dst: Path, data: Path = None, photo: str = None, seed: int = None) -> dict:
    data = dev_data() if data is None else data
    photo = photo or os.environ.get("RM_DEV_PHOTO") or DEFAULT_PHOTO
    seed = int(os.environ.get("RM_LASSO_SEED", "0")) if seed is None else seed
    dst.mkdir(parents=True, exist_ok=True)
    src_img, src_gt = data / "input" / f"{photo}.png", data / "gt" / f"{photo}.png"
    for stale in ("gt.png", "rough.json", "box.json"):
        (dst / stale).unlink(missing_ok=True)
    if src_img.is_file() and src_gt.is_file():
        sys.path.insert(0, str(ROOT))
        from trimap import simulate

        gt = grey01(src_gt)
        lasso = simulate.lasso_from_alpha(gt, np.random.default_rng(seed))
        Image.open(src_img).convert("RGB").save(dst / "photo.png")
        Image.fromarray(lasso.astype(np.uint8) * 255, "L").save(dst / "rough.png")
        Image.fromarray(np.round(gt * 255).astype(np.uint8), "L").save(dst / "gt.png")
        info = {"photo": photo, "seed": seed, "source": str(data), "size": list(gt.shape[::-1]),
                "lasso_sad": round(sad(lasso, gt), 2)}
        # the rectangle bench's box for this photo: its hand is seeded by the photo's place
        # among the dataset's photos, and 1 for a box (bench/rough_bench.py)
        place = sorted(p.stem for p in (data / "gt").glob("*.png")).index(photo)
        box = simulate.rectangle_from_alpha(gt, np.random.default_rng([seed, place, 1]))
        ys, xs = np.nonzero(box)
        info["box"] = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        info["box_sad"] = round(sad(box, gt), 2)
        (dst / "box.json").write_text(json.dumps({"box": info["box"]}))
    else:
        samples = ROOT / "diffmatte" / "samples"
        Image.open(samples / "sample_image.png").convert("RGB").save(dst / "photo.png")
        Image.open(samples / "sample_trimap.png").convert("L").point(
            lambda v: 255 if v >= 128 else 0).save(dst / "rough.png")
        info = {"photo": "astronaut (bundled sample)", "seed": None, "source": None,
                "missing": str(src_img if not src_img.is_file() else src_gt)}
    (dst / "rough.json").write_text(json.dumps(info))
    return info


def score(out: Path, inp: Path, ratio: float = RATIO) -> dict:
    """Add the rough-lasso check (or a NOTE that it is skipped) to out/results.json."""
    path = out / "results.json"
    r = json.loads(path.read_text())
    info = json.loads((inp / "rough.json").read_text()) if (inp / "rough.json").is_file() else {}
    if not (inp / "gt.png").is_file():
        r.setdefault("notes", []).append(
            "rough-lasso number check skipped: no dev photos with ground truth (%s missing); "
            "the photo is the bundled astronaut" % info.get("missing", dev_data()))
    else:
        gt = grey01(inp / "gt.png")
        lasso = grey01(inp / "rough.png") >= 0.5
        lasso_sad = sad(lasso, gt)
        name = ("rough lasso on %s (seed %s): refine-1 mask SAD <= %.1fx the lasso's"
                % (info.get("photo"), info.get("seed"), ratio))
        m1 = out / "mask-1.png"
        if not m1.is_file():
            ok, detail = False, "no mask-1.png: the scenario saved no refine-1 mask"
        else:
            mask = grey01(m1)
            if mask.shape != gt.shape:
                ok, detail = False, "mask %s px vs truth %s px" % (mask.shape[::-1], gt.shape[::-1])
            else:
                mask_sad = sad(mask, gt)
                ok = mask_sad <= ratio * lasso_sad
                detail = "mask SAD %.1f, lasso SAD %.1f: %.3fx" % (mask_sad, lasso_sad, mask_sad / lasso_sad)
                r["rough_sad"] = {"photo": info.get("photo"), "seed": info.get("seed"),
                                  "mask": round(mask_sad, 2), "lasso": round(lasso_sad, 2)}
                m2 = out / "mask-2.png"
                if m2.is_file() and grey01(m2).shape == gt.shape:
                    r["rough_sad"]["mask2"] = round(sad(grey01(m2), gt), 2)
                    r.setdefault("notes", []).append(
                        "refine 2 (from refine 1's mask, Edge exact) has SAD %.1f" % r["rough_sad"]["mask2"])
        r["checks"].append({"name": name, "ok": bool(ok), "detail": detail})
        r["ok"] = bool(r.get("ok")) and bool(ok)
        whole = _select_all_check(out / "mask-all.png", gt, info)
        r["checks"].append(whole)
        r["ok"] = bool(r["ok"]) and whole["ok"]
        if info.get("box"):
            boxed = _box_check(out / "mask-rect.png", gt, info)
            r["checks"].append(boxed)
            r["ok"] = bool(r["ok"]) and boxed["ok"]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r, indent=1))
    os.replace(tmp, path)
    return r


def _select_all_check(path: Path, gt: np.ndarray, info: dict) -> dict:
    """The Select All refine's mask against the truth, and the whole canvas's own SAD."""
    name = ("Select All on %s, Edge rough: mask SAD <= %.2fx the whole canvas's"
            % (info.get("photo"), RATIO_ALL))
    return _beats(path, gt, np.ones(gt.shape, bool), RATIO_ALL, name, ("Select All", "whole canvas"))


def _box_check(path: Path, gt: np.ndarray, info: dict) -> dict:
    """The rectangle refine's mask against the truth, and the box's own SAD."""
    x, y, w, h = info["box"]
    box = np.zeros(gt.shape, bool)
    box[y:y + h, x:x + w] = True
    name = "rectangle on %s (seed %s): mask SAD <= %.2fx the box's" % (info.get("photo"), info.get("seed"), RATIO_BOX)
    return _beats(path, gt, box, RATIO_BOX, name, ("rectangle", "box"))


def _beats(path: Path, gt: np.ndarray, selection: np.ndarray, ratio: float, name: str, words) -> dict:
    """The check ``name``: the mask saved at ``path`` has at most ``ratio`` times the SAD of
    the ``selection`` used as the mask; ``words``: (the refine, the selection) in the detail."""
    if not path.is_file():
        return {"name": name, "ok": False, "detail": "no %s: the scenario saved no %s mask" % (path.name, words[0])}
    mask = grey01(path)
    if mask.shape != gt.shape:
        return {"name": name, "ok": False, "detail": "mask %s px vs truth %s px" % (mask.shape[::-1], gt.shape[::-1])}
    got, own = sad(mask, gt), sad(selection, gt)
    return {"name": name, "ok": bool(got <= ratio * own),
            "detail": "mask SAD %.1f, %s SAD %.1f: %.3fx" % (got, words[1], own, got / own)}


def main(argv) -> int:
    if len(argv) == 2 and argv[0] == "prepare":
        info = prepare(Path(argv[1]))
        if info.get("source"):
            print("photo %s from %s, a simulated lasso (seed %s): lasso SAD %.1f; box %s: box SAD %.1f"
                  % (info["photo"], info["source"], info["seed"], info["lasso_sad"], info["box"], info["box_sad"]))
        else:
            print("NOTE: no dev photos (%s): the bundled astronaut, the rough-lasso number check "
                  "is skipped" % info["missing"])
        return 0
    if len(argv) == 3 and argv[0] == "score":
        out, inp = Path(argv[1]), Path(argv[2])
        if not (out / "results.json").is_file():
            return 0  # the scenario did not run; the verdict step says so
        try:
            score(out, inp)
        except Exception as exc:  # a broken check must fail the host, not vanish
            path = out / "results.json"
            r = json.loads(path.read_text())
            r["checks"].append({"name": "rough-lasso number check", "ok": False,
                                "detail": "%s: %s" % (type(exc).__name__, exc)})
            r["ok"] = False
            path.write_text(json.dumps(r, indent=1))
            raise
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
