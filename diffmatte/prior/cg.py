"""The priors' one linear solver: Jacobi-preconditioned conjugate gradients.

Closed-form matting (closed_form.py: torch, a batch of images, a fixed number of
iterations per pyramid level) and information flow (information_flow.py: numpy, one
system, until a relative residual) both solve a symmetric positive (semi-)definite system
with :func:`pcg`. What differs between them is passed in: the operator ``apply``, the
preconditioner, the inner product ``dot`` and the stop rule. Only ``+ - *`` on the vectors
and comparisons on the per-system scalars are used, so the same loop runs on numpy arrays
and on torch tensors (any device).

One rule for a step that cannot be taken (``p.Ap`` or ``r.z`` not above TINY: the system
is solved to rounding, or a direction has no curvature): that system takes no step (and
restarts from the steepest direction); when no system can step, the iteration ends.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .progress import Progress, ignore

TINY = 1e-30     # p.Ap or r.z at or below this: no step along p (see the module's text)

#: a vector: a numpy array, or a torch tensor (one system, or a batch along dimension 0)
Vector = Any
#: per-system scalars: a float for one system, or a tensor shaped to broadcast over a batch
Scalars = Any


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """a . b of two numpy vectors without BLAS: OpenBLAS splits a dot product of this size
    over its threads, and on a busy 2-core machine its threads' waits made each one cost
    milliseconds (information flow's CG on a 1 MP, 12 % band: 4.6 -> 1.0 s CPU with the
    BLAS threads' waits gone). Added up in float64 whatever the vectors' type: information
    flow's CG runs in float32, and its stop rule compares residual norms to 1e-5."""
    return float(np.einsum("i,i->", a, b, dtype=np.float64))


def pcg(apply: Callable[[Vector], Vector], b: Optional[Vector], x: Vector,
        precondition: Callable[[Vector], Vector], *, maxiter: int, rtol: Optional[float] = None,
        dot: Callable[[Vector, Vector], Scalars] = dot,
        select: Optional[Callable[[Any, Vector, float], Vector]] = None,
        check: Progress = ignore) -> Vector:
    """Solve ``apply(x) = b`` (``b`` None: zero) by preconditioned conjugate gradients
    started at ``x``; returns the new ``x`` (the arguments are not changed).

    - ``precondition(r)``: M^-1 r (Jacobi: ``r / diag(A)``, or ``inv_diag * r``).
    - ``dot(u, v)``: each system's inner product; the default is :func:`dot` (numpy, one
      system). A batch of systems in torch: ``(u * v).flatten(1).sum(1)`` viewed to
      broadcast over ``u``, and ``select=torch.where`` so that a system that cannot step
      keeps still while the others go on.
    - Stop rule: at most ``maxiter`` iterations; with ``rtol``, also once every system's
      residual norm is at most ``rtol`` x |b| (1e-30 when b is zero).
    - ``check(fraction)`` before every iteration: with ``rtol``, how far the (slowest)
      residual has fallen towards the tolerance on a log scale (not monotone); without it,
      the share of ``maxiter`` done. It may raise to stop the solve.

    Written out rather than scipy's ``cg``, which spent as long in its Python wrappers as
    in information flow's matrix products."""
    x = x * 1.0      # copies (exactly): the updates below are in place, on vectors of our own
    r = -apply(x) if b is None else b - apply(x)
    z = precondition(r)
    p = z * 1.0
    rz = dot(r, z)
    if rtol is not None:
        size = _host(dot(b, b)) ** 0.5 if b is not None else np.zeros_like(_host(rz))
        stop = rtol * np.maximum(size, 1e-30)
        r0 = np.maximum(_host(dot(r, r)) ** 0.5, stop * (1 + 1e-9))

    def ratio(num: Scalars, den: Scalars) -> Optional[Scalars]:
        """num / den per system, 0 where den <= TINY; None when that is every system."""
        ok = den > TINY
        if _host(ok).all():
            return num / den
        if not _host(ok).any():
            return None
        if select is None:
            raise ValueError("pcg: a batch of systems needs select= (torch.where)")
        return select(ok, num / den, 0.0)

    for it in range(maxiter):
        if rtol is not None:
            rn = _host(dot(r, r)) ** 0.5
            if (rn <= stop).all():
                break
            # one large solve's iteration takes up to ~0.2 s, so every iteration reports
            fraction = np.log(r0 / np.maximum(rn, 1e-300)) / np.log(r0 / stop)
            check(min(1.0, max(0.0, float(fraction.min()))))
        else:
            check(it / maxiter)
        ap = apply(p)
        step = ratio(rz, dot(p, ap))
        if step is None:
            break  # no system can step (solved to rounding, or a singular direction)
        x += step * p
        r -= step * ap
        z = precondition(r)
        rz_new = dot(r, z)
        beta = ratio(rz_new, rz)
        if beta is None:
            p = z * 1.0
        else:
            p *= beta
            p += z
        rz = rz_new
    return x


@dataclass(frozen=True)
class TorchCG:
    """Where information flow's system is solved by :func:`pcg` in torch instead: on
    ``device`` ("cpu", "cuda", "cuda:1" or a ``torch.device``) in ``dtype`` ("float64", or
    "float32": half the memory traffic; its alpha agrees with float64's to about 1e-4, see
    tests/diffmatte/prior/test_prior_cg.py). The CPU is torch's too, so the path is tested without a GPU.

    ``flows``: the flows' neighbour searches and weights run in torch on the device too
    (device_flows.py: brute-force searches instead of KD-trees), not only the CG; the
    sparse rows are still assembled by scipy on the host."""
    device: Any = "cpu"
    dtype: str = "float64"
    flows: bool = False

    def vector(self, a: np.ndarray) -> Any:
        """``a`` as a tensor on the device."""
        import torch
        return torch.as_tensor(np.ascontiguousarray(a), dtype=getattr(torch, self.dtype), device=self.device)

    def csr(self, m: Any) -> Any:
        """A scipy CSR matrix as a ``torch.sparse_csr_tensor`` on the device (converted once
        per solve; ``m @ v`` is cuSPARSE on a GPU, MKL or torch's own on the CPU)."""
        import torch
        index = lambda a: torch.as_tensor(a.astype(np.int64), device=self.device)  # noqa: E731
        with warnings.catch_warnings():   # "sparse CSR support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(index(m.indptr), index(m.indices), self.vector(m.data),
                                           size=m.shape, check_invariants=False)

    @staticmethod
    def dot(a: Any, b: Any) -> Any:
        """One system's inner product, left on the device (a 0-d tensor)."""
        import torch
        return torch.dot(a, b)

    @staticmethod
    def numpy(x: Any) -> np.ndarray:
        """A solution back on the host, float64."""
        return x.detach().double().cpu().numpy()


def _host(v: Scalars) -> np.ndarray:
    """Per-system scalars (a float, a numpy value or a torch tensor on any device) as a
    flat float64 (or bool) numpy array."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v).ravel()
