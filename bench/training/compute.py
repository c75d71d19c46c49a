"""How many trainings run at once and how many torch threads each one uses.

Torch's default intra-op thread count is the number of cores; on a small machine two processes
with that default, or one process beside any other work, oversubscribe the cores and a step
can take several times longer. slrbench therefore always sets the thread count explicitly:
``jobs`` worker processes times ``threads`` threads never exceeds the usable cores, and every
record stores the pair (`compute` in run.json). CPU results are bit-identical for the same
thread count, not across thread counts (floating-point reductions are split differently).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from slrbench.errors import check_range

# One torch thread per job by default (docs/PERFORMANCE.md#parallel-streams): on an idle
# 2-core machine two one-thread processes train two streams as fast as one two-thread process
# trains them in turn, they degrade gracefully when other work runs, and the thread count (so
# the CPU result) does not depend on the machine's core count or on how many streams run.
DEFAULT_THREADS_PER_JOB = 1


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / cgroup-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Compute:
    """Worker processes and torch threads per process for one `slrbench run`."""

    jobs: int
    threads: int

    @classmethod
    def resolve(cls, jobs: int | None, threads: int | None, device: torch.device,
                tasks: int) -> Compute:
        """Defaults: on CPU one one-thread job per usable core; on CUDA one job (the GPU is
        the shared resource) with the cores as threads. The thread count follows from the
        requested jobs, not from ``tasks``: a stream trained alone uses the same threads as
        when it trains beside others, so its CPU result is the same."""
        check_counts(jobs, threads)
        cores = usable_cores()
        if jobs is None:
            per_job = threads or DEFAULT_THREADS_PER_JOB
            jobs = 1 if device.type == "cuda" else max(1, cores // per_job)
        if threads is None:
            threads = max(1, cores // jobs)
        return cls(jobs=max(1, min(jobs, tasks)), threads=threads)

    def provenance(self) -> dict[str, int]:
        return {"jobs": self.jobs, "torch_threads": self.threads, "usable_cores": usable_cores()}


# More processes or threads than this is a typo on any machine slrbench runs on.
MAX_PARALLEL = 4096


def check_counts(jobs: int | None, threads: int | None) -> None:
    """--jobs and --threads within [1, MAX_PARALLEL] (checked before any data is loaded)."""
    for name, value in (("--jobs", jobs), ("--threads", threads)):
        if value is not None:
            check_range(name, value, 1, MAX_PARALLEL)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

