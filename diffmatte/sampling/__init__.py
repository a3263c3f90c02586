"""Sampling at any size: the tiled and sparse DDIM samplers, tile plans, the sparse decoder,
the tile cache of incremental re-runs and the memory budget (see docs/TILING.md)."""
