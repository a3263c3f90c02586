#!/usr/bin/env python3
"""The default model's prior (information flow) on a GPU (#23): the numpy path (KD-trees,
scipy, numpy CG on the CPU) against the torch path (brute-force searches, weights and CG in
torch on ``--device``: ``TorchCG(device, "float64", flows=True)``), one table.

    python bench/bench_prior_gpu.py                      # on a CUDA machine: the whole table
    python bench/bench_prior_gpu.py --device cpu --small # anywhere, in about a minute
    python bench/bench_prior_gpu.py --agreement [--scale 0.5] [--cases GT01 GT05] [--device cpu]
    python bench/bench_prior_gpu.py --paper --device cpu  # the 24 MP row's work, on paper

Rows: a dev photo resized to 1 MP with its trimap (bench_pipeline_1mp.load): GT11 trimap1
(12.5 % unknown) and GT04 trimap1 (39.7 %), synthetic portraits (bench_tiled.portrait)
when the photos are absent; and a synthetic 24 MP (6000 x 4000) portrait with a 30 % band
(coarse solve + windows). ``--small`` shrinks every row (0.02 MP; the 24 MP row to 0.03 MP
with 64 px windows, so the windowed path still runs). The numpy path of the 24 MP row takes
minutes (docs/TILING.md: 514 s wall on 2 cores), so it runs only with ``--numpy-24mp``.

Each torch row also counts its work: point pairs compared by the brute-force searches,
CG iterations and the system's non-zeros (the "on paper" estimate's inputs). Wall seconds,
CUDA synchronised; the first CUDA call (context, kernels) is taken by a warm-up solve.

``--paper``: the 24 MP row's work counted from its windows (no GPU needed), CG iterations
measured on a few windows, divided by an H100's figures (the numbers in docs/TILING.md).
``--agreement``: every dev photo (13 x trimap1 / trimap2; resized by ``--scale``) solved
by both paths: SAD against the ground truth (resized the same way), max |alpha difference|.

On a lent device machine whose image lacks the engine's pykdtree (the numpy path's KD-trees;
prior/flows.py imports it), carry its wheel unpacked: ``pip download pykdtree --no-deps -d w &&
python -m zipfile -e w/pykdtree-*.whl vendor`` here, then ``PYTHONPATH=vendor`` there (1.5 MB).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DEV = Path(os.environ.get("REFINE_MATTE_SHARED", ROOT.parent / "shared")) / "data" / "dev" / "alphamatting-real"


class Work:
    """What one solve did: brute-force pairs, CG iterations, non-zeros of the system."""

    def __init__(self) -> None:
        self.pairs = 0
        self.iterations = 0
        self.nnz = []      # per CG solve: nnz(R_u) + nnz(R_u^T) + nnz(A)

    def text(self) -> str:
        nnz = max(self.nnz) if self.nnz else 0
        return f"{self.pairs:.3g} pairs, {self.iterations} CG its, {len(self.nnz)} solves, max nnz {nnz:.3g}"


@contextmanager
def counting(work: Work):
    """Count the work of the solves inside (wraps device_flows.knn, information_flow._cg)."""
    from diffmatte.prior import device_flows, information_flow as ifm

    knn, cg, pcg = device_flows.knn, ifm._cg, ifm.pcg

    def knn_counted(data, queries, k, *a, **kw):
        work.pairs += len(data) * len(queries)
        return knn(data, queries, k, *a, **kw)

    def cg_counted(r_u, r_ut, a_loc, *a, **kw):
        work.nnz.append(r_u.nnz + r_ut.nnz + a_loc.nnz)
        return cg(r_u, r_ut, a_loc, *a, **kw)

    def pcg_counted(apply, *a, **kw):
        def applied(v):
            work.iterations += 1
            return apply(v)
        return pcg(applied, *a, **kw)

    device_flows.knn, ifm._cg, ifm.pcg = knn_counted, cg_counted, pcg_counted
    try:
        yield work
    finally:
        device_flows.knn, ifm._cg, ifm.pcg = knn, cg, pcg


def rows(small: bool):
    """(name, image float32, trimap uint8, tile) of every row."""
    from bench_tiled import portrait

    mp = 0.02 if small else 1.0
    out = []
    for name, case, share in (("1 MP, 12 %", "GT11", 0.12), ("1 MP, 40 %", "GT04", 0.40)):
        if (DEV / "input" / f"{case}.png").exists():
            from bench_pipeline_1mp import load

            img, tri = load(DEV, case, "trimap1", mp)
            name += f" ({case} trimap1)"
        else:
            side = int(1000 * mp ** 0.5)
            img, tri, _ = portrait(side, side, share)
            img = img.astype(np.float32) / 255
            name += " (synthetic)"
        out.append((name.replace("1 MP", f"{mp:g} MP"), img, tri, None))
    h, w = (150, 225) if small else (4000, 6000)
    img, tri, _ = portrait(h, w, 0.30)
    out.append((f"{h * w / 1e6:.2g} MP, 30 % (synthetic)", img.astype(np.float32) / 255, tri, 64 if small else None))
    return out


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(solve, device: str):
    """(result, wall s, CPU s) of ``solve()``."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = solve()
    _sync(device)
    return out, time.perf_counter() - t0, time.process_time() - c0


def table(args) -> None:
    from diffmatte.prior.cg import TorchCG
    from diffmatte.prior.solve import information_flow_alpha

    dev = TorchCG(args.device, "float64", flows=True)
    warm = np.zeros((40, 40), np.uint8)
    warm[:, 14:26], warm[:, 26:] = 128, 255
    information_flow_alpha(np.random.default_rng(0).random((40, 40, 3)).astype(np.float32), warm, torch_cg=dev)
    print(f"device {args.device}, torch threads {_threads()}, load average {os.getloadavg()[0]:.1f}\n")
    print("| row | unknown px | numpy wall / CPU (s) | torch wall / CPU (s) | max abs diff | torch work |")
    print("|---|---|---|---|---|---|")
    for name, img, tri, tile in rows(args.small):
        unknown = int(((tri > 0) & (tri < 255)).sum())
        big = img.shape[0] * img.shape[1] > 4e6
        want = None
        if not big or args.numpy_24mp:
            want, nw, nc = timed(lambda: information_flow_alpha(img, tri, tile=tile), args.device)
        with counting(Work()) as work:
            got, tw, tc = timed(lambda: information_flow_alpha(img, tri, tile=tile, torch_cg=dev), args.device)
        numpy_col = f"{nw:.1f} / {nc:.1f}" if want is not None else "- (--numpy-24mp)"
        diff = f"{np.abs(got - want).max():.1e}" if want is not None else "-"
        print(f"| {name} | {unknown} | {numpy_col} | {tw:.1f} / {tc:.1f} | {diff} | {work.text()} |", flush=True)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def agreement(args) -> None:
    from PIL import Image

    from diffmatte.prior.cg import TorchCG
    from diffmatte.prior.solve import information_flow_alpha

    dev = TorchCG(args.device, args.dtype, flows=True)
    names = args.cases or sorted(p.stem for p in (DEV / "input").glob("*.png"))
    print(f"device {args.device}, CG {args.dtype}, scale {args.scale}, load average {os.getloadavg()[0]:.1f}\n")
    print("| trimap | photo | unknown px | SAD numpy | SAD torch | max abs diff | CPU numpy / torch (s) |")
    print("|---|---|---|---|---|---|---|")
    sads = {}
    for tset in ("trimap1", "trimap2"):
        for name in names:
            def read(folder, mode, resample):
                im = Image.open(DEV / folder / f"{name}.png").convert(mode)
                size = (round(im.width * args.scale), round(im.height * args.scale))
                return np.asarray(im.resize(size, resample) if args.scale != 1 else im)
            img = read("input", "RGB", Image.BOX).astype(np.float32) / 255
            tri = read(tset, "L", Image.NEAREST)
            gt = read("gt", "L", Image.BOX).astype(np.float32) / 255
            a0, _, c0 = timed(lambda: information_flow_alpha(img, tri), args.device)
            a1, _, c1 = timed(lambda: information_flow_alpha(img, tri, torch_cg=dev), args.device)
            s0, s1 = np.abs(a0 - gt).sum() / 1000, np.abs(a1 - gt).sum() / 1000
            sads.setdefault(tset, []).append((s0, s1, float(np.abs(a1 - a0).max())))
            print(f"| {tset} | {name} | {int((tri == 128).sum())} | {s0:.3f} | {s1:.3f} | "
                  f"{np.abs(a1 - a0).max():.1e} | {c0:.1f} / {c1:.1f} |", flush=True)
    for tset, v in sads.items():
        v = np.array(v)
        print(f"\n{tset}: mean SAD numpy {v[:, 0].mean():.4f}, torch {v[:, 1].mean():.4f}, "
              f"max abs diff {v[:, 2].max():.1e} ({len(v)} cases)")
    allv = np.array([x for v in sads.values() for x in v])
    print(f"all: mean SAD numpy {allv[:, 0].mean():.4f}, torch {allv[:, 1].mean():.4f}, "
          f"max abs diff {allv[:, 2].max():.1e}; load average now {os.getloadavg()[0]:.1f}")


# H100 (SXM) figures the estimate divides by (NVIDIA's data sheet, rounded down):
FLOPS = 50e12           # fp32, matrix products
BANDWIDTH = 3e12        # bytes / s, HBM
PAIR_BYTES = (8, 24)    # a pair's distance written once (4 B), read by topk once .. by 4 radix passes + write
NNZ_BYTES = 20          # a CSR non-zero in a product: value 8 + column index 8 + the gathered x 4-8


def paper(args) -> None:
    """The 24 MP, 30 % row's work counted from its plan (windows, their unknown pixels, search
    regions and K-to-U sources), CG iterations measured on ``--paper-windows`` windows
    (numpy path; the torch path takes the same iterations), divided by H100 figures."""
    from scipy import ndimage as ndi

    from bench_tiled import portrait
    from diffmatte.prior import information_flow as ifm, windows as wn

    img, tri, _ = portrait(4000, 6000, 0.30)
    unknown = tri == 128
    (y0, y1), (x0, x1) = ifm._bbox(unknown, ifm.SEARCH_MARGIN + ifm.EXPAND_RADIUS)
    label = np.where(tri == 255, 1, np.where(tri == 0, 0, -1)).astype(np.int8)[y0:y1, x0:x1]
    image = img[y0:y1, x0:x1].astype(np.float32) / 255
    h, w = label.shape
    unk = label < 0
    size = 2 * ifm.SEARCH_MARGIN + 1
    cores = wn._active_cores(unk, wn.TILE_CORE)
    wins = [wn._grow(c, wn.TILE_MARGIN, h, w) for c in cores]
    plan = []   # (unknown, region, known sources) per solve
    for win in wins:
        a, b, c, d = win
        u = unk[a:b, c:d]
        ba, bb, bc, bd = wn._grow(win, wn.SAMPLE_REACH, h, w)
        lab = label[ba:bb, bc:bd]
        src = ndi.maximum_filter(lab < 0, size=size) & (lab >= 0)
        plan.append((int(u.sum()), int(ndi.maximum_filter(u, size=size).sum()), int(src.sum())))
    f = int(np.ceil(np.sqrt(unk.sum() / wn.COARSE_UNKNOWN)))
    cu = unk[: h // f * f, : w // f * f].reshape(h // f, f, w // f, f).any((1, 3))
    plan.append((int(cu.sum()), int(ndi.maximum_filter(cu, size=size).sum()),
                 int((ndi.maximum_filter(cu, size=size) & ~cu).sum())))
    nu = np.array([p[0] for p in plan], float)
    reg = np.array([p[1] for p in plan], float)
    src = np.array([p[2] for p in plan], float)
    pairs = {"colour mixture": (nu * reg).sum(), "intra-U": (nu * nu).sum(), "K-to-U": (nu * src).sum()}
    # knn's chunks with an 80 GB card's budget (device_flows.distance_budget: its cap)
    from diffmatte.prior.device_flows import GPU_DISTANCE_BYTES

    rows = lambda n: max(1, GPU_DISTANCE_BYTES[1] // (3 * n * 4))  # noqa: E731
    chunks = sum(np.ceil(q / rows(n)) for q, r, s in zip(nu, reg, src) for n in (r, q, s / 2, s / 2))
    print(f"24 MP, 30 %: crop {w} x {h}, {int(unk.sum())} unknown px, {len(wins)} windows + a coarse solve "
          f"(1/{f}: {int(cu.sum())} unknown); unknown px summed over the solves {nu.sum():.3g}")
    for k, v in pairs.items():
        print(f"  brute-force pairs, {k}: {v:.3g}")
    its, nnz_per_px = _measured_cg(image, label, wins, args.paper_windows)
    total = sum(pairs.values())
    lo, hi = (total * b / BANDWIDTH for b in PAIR_BYTES)
    flops = total * 10 / FLOPS
    cg = its * nnz_per_px * nu.sum() * NNZ_BYTES / BANDWIDTH
    lle = nu.sum() * 2 * 1000 / BANDWIDTH      # ~1 KB read per pixel and flow (D, K x 3 float64)
    print(f"  searches: {total:.3g} pairs: {flops:.1f} s of fp32 flops (10 per pair), "
          f"{lo:.0f}-{hi:.0f} s of memory traffic ({PAIR_BYTES[0]}-{PAIR_BYTES[1]} B per pair)")
    print(f"  searches: {chunks:.0f} chunks of <= {GPU_DISTANCE_BYTES[1] >> 30} GiB, ~10 kernels each at ~10 us: "
          f"{chunks * 1e-4:.1f} s of launches")
    print(f"  LLE weights: {2 * nu.sum():.3g} small solves, ~{lle:.2f} s of memory traffic")
    print(f"  CG: {its:.0f} iterations x {nnz_per_px:.0f} nnz per unknown px x {nu.sum():.3g} px x "
          f"{NNZ_BYTES} B: {cg:.1f} s")


def _measured_cg(image, label, wins, n: int):
    """(CG iterations per window, the system's nnz per unknown pixel) from ``n`` windows
    around the middle of the list (numpy path); (150, 50) unmeasured when ``n`` is 0."""
    if n <= 0:
        return 150.0, 50.0
    from diffmatte.prior import information_flow as ifm, windows as wn

    h, w = label.shape
    f = int(np.ceil(np.sqrt((label < 0).sum() / wn.COARSE_UNKNOWN)))
    coarse = ifm._solve_reduced(image, label, f, lambda x: None)
    lab = ifm.expand_known(image, label)
    work = Work()
    nus = []
    with counting(work):
        for win in wins[len(wins) // 2: len(wins) // 2 + n]:
            nus.append(int((lab[win[0]:win[1], win[2]:win[3]] < 0).sum()))
            wn._solve_window(image, lab, coarse, win, lambda x: None)
    its = (work.iterations - len(nus)) / len(nus)     # less each solve's first residual
    per_px = sum(work.nnz) / sum(nus)
    print(f"  measured on {len(nus)} windows ({nus} unknown px): {its:.0f} CG iterations each, "
          f"{per_px:.1f} nnz (R_u, R_u^T, A) per unknown px")
    return its, per_px


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="torch device of the torch path (default: cuda if present)")
    p.add_argument("--small", action="store_true", help="tiny rows (a CPU check of the script, ~1 min)")
    p.add_argument("--numpy-24mp", action="store_true", help="also time the numpy path at 24 MP (minutes)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--agreement", action="store_true", help="the dev set, numpy vs torch (SAD, max diff)")
    p.add_argument("--scale", type=float, default=1.0, help="--agreement: resize the photos by this")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="--agreement: the torch path's CG dtype (the searches and weights are the same)")
    p.add_argument("--cases", nargs="*", help="--agreement: these photos only (e.g. GT01 GT05)")
    p.add_argument("--paper", action="store_true", help="the 24 MP row's work counted, divided by H100 figures")
    p.add_argument("--paper-windows", type=int, default=2, help="--paper: windows solved to measure CG")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu --small (a check of the script), or on a GPU")
        return 2
    if args.device == "cpu" and not (args.small or args.agreement or args.paper):
        print("the torch path's brute-force searches on a CPU take hours at these sizes: "
              "use --small (or --agreement) with --device cpu")
        return 2
    if args.paper:
        paper(args)
    elif args.agreement:
        agreement(args)
    else:
        table(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
