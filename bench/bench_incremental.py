#!/usr/bin/env python3
"""Incremental re-run after a brush stroke (#11): tile-steps decoded, CPU time, and the
difference from a fresh refine of the edited trimap (default model, 1 thread, 10 steps).

    python bench/bench_incremental.py [H W TILE]      (default 2000 3000 256; TILE 0: automatic)

With sparse decoding (the default) a tile size N gives regions of 2N-px cores; the
automatic mode decodes an image that fits the memory budget as one region, so an edit
re-decodes all of it (only the encoder tiles away from the edit are reused).
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tiled import load_variant, portrait  # noqa: E402

torch.set_num_threads(1)
H, W, T = (int(a) for a in sys.argv[1:4]) if len(sys.argv) > 3 else (2000, 3000, 256)
T = T or None  # 0: the engine's automatic choice
img, tri, real = portrait(H, W, 0.05)
eng = load_variant('default', 'cpu')
c0 = time.process_time()
eng.refine(img, tri, steps=10, seed=0, tile_size=T)
c1 = time.process_time() - c0
s = eng.last_stats
print(f'{W}x{H} unknown {real:.3f}: tiles {s.tiles}, tile-steps {s.tile_steps}, first refine CPU {c1:.1f}s',
      flush=True)
ys, xs = np.nonzero(tri == 128)
k = len(ys) // 3
edited = tri.copy()
y, x = ys[k], xs[k]
edited[max(0, y - 8):y + 8, max(0, x - 8):x + 8] = 255  # a 16 px brush dab on the band
c0 = time.process_time()
inc = eng.refine(img, edited, steps=10, seed=0, tile_size=T)
c2 = time.process_time() - c0
s3 = eng.last_stats
print(f'after a 16 px stroke: decoded {s3.decoded} of {s3.tile_steps} tile-steps, encoder tiles reused '
      f'{s3.encoder_reused}/{s3.encoder_tiles}, CPU {c2:.1f}s', flush=True)
eng.cache.clear()
c0 = time.process_time()
fresh = eng.refine(img, edited, steps=10, seed=0, tile_size=T)
c3 = time.process_time() - c0
d = np.abs(inc - fresh)
print(f'fresh refine CPU {c3:.1f}s; incremental vs fresh: max {d.max():.2e}, '
      f'mean over unknown {d[edited == 128].mean():.2e}', flush=True)
