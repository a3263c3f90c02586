"""Batch refining for pipelines: flat and layered files, trimaps from files, masks or the
layers themselves, a resumable manifest, worker processes and Ray.

>>> from diffmatte import batch
>>> summary = batch.run(["shots/"], "out/", layers="subject*", jobs=2)
>>> summary.refined, summary.failed

See :func:`run` for every option; ``diffmatte batch --help`` for the command line.
"""
from __future__ import annotations

from .plan import MANIFEST, Item
from .runner import Summary, run
from .work import Settings

__all__ = ["MANIFEST", "Item", "Settings", "Summary", "run"]
