"""Contact sheets of training samples (composite, alpha, trimap), to check data by eye."""
from __future__ import annotations

import numpy as np


def sample_sheet(dataset, indices, columns: int = 6) -> np.ndarray:
    """uint8 RGB sheet: for each sample a column block of composite / alpha / trimap."""
    tiles = []
    for i in indices:
        r = dataset.raw(i)
        img = r["image"]
        alpha = np.repeat(r["alpha"][..., None], 3, axis=2)
        tri = np.repeat(r["trimap"][..., None].astype(np.float32) / 255.0, 3, axis=2)
        tiles.append(np.concatenate([img, alpha, tri], axis=0))
    if not tiles:
        raise ValueError("no samples to show")
    h, w = tiles[0].shape[:2]
    rows = []
    pad = np.ones((h, 4, 3), np.float32)
    for start in range(0, len(tiles), columns):
        chunk = tiles[start:start + columns]
        chunk += [np.zeros_like(tiles[0])] * (columns - len(chunk))
        row = np.concatenate([x for t in chunk for x in (t, pad)][:-1], axis=1)
        rows.append(row)
        rows.append(np.ones((8, row.shape[1], 3), np.float32))
    sheet = np.concatenate(rows[:-1], axis=0)
    return (np.clip(sheet, 0, 1) * 255).round().astype(np.uint8)
