"""How often a running job tells its clients about the engine's work (issue #23): a solve
that reports every 0.15 s must not reach the docker's bar as one event every 1-2 s (the
throttle used to wait a whole second after each event, so reports just under a second
apart arrived two seconds apart)."""
from __future__ import annotations

import time

import numpy as np

from diffmatte.service import jobs
from diffmatte.service.job import Job


class Ticking:
    """An engine whose refine reports its work every ``every`` seconds, ``n`` times."""

    def __init__(self, every: float = 0.15, n: int = 12) -> None:
        self.every, self.n = every, n

    def refine(self, image, trimap, progress=None, **_):
        for i in range(self.n):
            time.sleep(self.every)
            progress(i + 1, 1000)
        return np.zeros(trimap.shape, np.float32)


def test_work_events_follow_the_engine_within_half_a_second():
    manager = jobs.JobManager(Ticking())
    job = Job(np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 128, np.uint8), steps=1, seed=0,
              preview=False, preview_size=64)
    manager.submit(job)
    deadline = time.monotonic() + 10
    while job.finished is None and time.monotonic() < deadline:
        time.sleep(0.05)
    work = [e for e in job.events if e["type"] == "work"]
    assert job.finished is not None and len(work) >= 4, job.events
    assert [e["done"] for e in work] == sorted(e["done"] for e in work)
    assert jobs.WORK_EVENT_INTERVAL <= 0.5
    manager.shutdown(1.0)
