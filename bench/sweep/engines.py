"""Where the work items of a sweep run: in this process one after another (`local`), or as Ray
tasks on a local Ray instance or a cluster (`ray`, the optional `ray` extra).

Both engines call the same `train_item`, retry an item that failed for a reason other than bad
input a bounded number of times, and report each finished item through one callback, so the
records a Ray sweep stores are those of a sequential sweep (docs/sweep.md).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slrbench.errors import SlrbenchError
from slrbench.sweep.grid import SweepSettings, WorkItem, build_request

ENGINES = ("local", "ray")
RAY_INSTALL = "pip install 'slrbench[ray]'"


@dataclass(frozen=True)
class ItemResult:
    """What one trained work item reports back to the driver."""

    label: str
    statuses: dict[str, str]  # "method/stream" -> trained, resumed, skipped, reused
    test_pi1: dict[str, float]  # "method/stream" -> test P-I@1
    seconds: float
    host: str
    threads: int


@dataclass
class Failure:
    label: str
    error: str
    attempts: int


@dataclass
class SweepProgress:
    """Callbacks of the driver: `done` after each finished item, `failed` after its last try."""

    done: Callable[[ItemResult], None]
    failed: Callable[[Failure], None]
    retried: Callable[[str, int, str], None] = field(default=lambda label, attempt, error: None)


def train_item(item: WorkItem, settings: SweepSettings) -> ItemResult:
    """Train one work item in this process with `settings.threads` torch threads: the cells'
    requests go to the runner together, which trains their one training once."""
    import torch
    from rich.console import Console

    from slrbench.datasets.registry import load_dataset
    from slrbench.store import RecordStore
    from slrbench.training import run_all

    torch.set_num_threads(settings.threads)
    tic = time.perf_counter()
    dataset = load_dataset(item.dataset)
    requests = [build_request(cell.method, dataset, cell.seed, cell.heads, settings)
                for cell in item.cells]
    outcomes = run_all(requests, RecordStore(settings.results), Console(quiet=True), jobs=1,
                       threads=settings.threads)
    statuses, scores = {}, {}
    for cell, streams in zip(item.cells, outcomes, strict=True):
        for outcome in streams:
            key = f"{cell.method}/{outcome.stream}"
            statuses[key] = outcome.status
            scores[key] = float(outcome.metrics["test"]["pi@1"]["value"])
    return ItemResult(item.label, statuses, scores, time.perf_counter() - tic,
                      socket.gethostname(), settings.threads)


def is_user_error(error: BaseException) -> bool:
    """Bad input fails the same way on every try: never retried. (Ray re-raises a task's error
    as a subclass of it, with the original as `cause`.)"""
    return isinstance(error, SlrbenchError) or isinstance(getattr(error, "cause", None),
                                                          SlrbenchError)


def one_line(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    shown = cause if isinstance(cause, BaseException) else error
    text = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {text[-1] if text else ''}".strip()


def run_local(items: Sequence[WorkItem], settings: SweepSettings, retries: int,
              progress: SweepProgress) -> list[Failure]:
    """One item after another in this process."""
    failures: list[Failure] = []
    for item in items:
        for attempt in range(1, retries + 2):
            try:
                progress.done(train_item(item, settings))
                break
            except Exception as error:
                if not _retry(item, attempt, error, retries, progress, failures):
                    break
    return failures


def _retry(item: WorkItem, attempt: int, error: BaseException, retries: int,
           progress: SweepProgress, failures: list[Failure]) -> bool:
    """After a failed attempt: True to try again; else the failure is recorded and reported."""
    if is_user_error(error) or attempt > retries:
        failure = Failure(item.label, one_line(error), attempt)
        failures.append(failure)
        progress.failed(failure)
        return False
    progress.retried(item.label, attempt, one_line(error))
    return True


def run_ray(items: Sequence[WorkItem], settings: SweepSettings, retries: int,
            progress: SweepProgress, address: str | None, workers: int | None) -> list[Failure]:
    """Every item as one Ray task needing `settings.threads` CPUs (and a GPU on CUDA); a task
    whose worker died is re-run by Ray, one that raised by this driver, both at most
    `retries` times. Without `address` a local Ray instance with `workers` x threads CPUs
    starts and stops with the sweep."""
    ray = import_ray()
    cuda = settings.device.startswith("cuda") or (
        settings.device == "auto" and _cuda_available())
    init: dict[str, Any] = {"address": address, "include_dashboard": False,
                            "log_to_driver": False}
    env = _worker_env()
    if env:
        init["runtime_env"] = {"env_vars": env}
    if address is None:
        init.update(num_cpus=(workers or 1) * settings.threads,
                    object_store_memory=_LOCAL_OBJECT_STORE)
    ray.init(**init)
    try:
        remote = ray.remote(train_item).options(
            num_cpus=settings.threads, num_gpus=1 if cuda else 0, max_retries=retries)
        pending: dict[Any, tuple[WorkItem, int]] = {
            remote.remote(item, settings): (item, 1) for item in items}
        failures: list[Failure] = []
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            item, attempt = pending.pop(ready)
            try:
                progress.done(ray.get(ready))
            except Exception as error:
                if _retry(item, attempt, error, retries, progress, failures):
                    pending[remote.remote(item, settings)] = (item, attempt + 1)
        return failures
    finally:
        ray.shutdown()


# A small object store: the items and results are a few kB; Ray's default (30 % of memory)
# would reserve shared memory a laptop or CI runner needs for training.
_LOCAL_OBJECT_STORE = 128 * 1024**2


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SlrbenchError(f"--engine ray: the ray package is not installed; install the "
                            f"optional extra with `{RAY_INSTALL}`, or use --engine local") from None
    return ray


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _worker_env() -> dict[str, str]:
    """The slrbench settings a worker must share with the driver (cache and results folders)."""
    return {name: str(Path(value).expanduser().resolve())  # the workers' cwd is Ray's own
            for name, value in os.environ.items() if name.startswith("SLRBENCH_") and value}
