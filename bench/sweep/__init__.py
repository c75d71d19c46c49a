"""`slrbench sweep`: the benchmark grid (methods x datasets x seeds x streams) trained on an
engine (`local` or `ray`), every record into the one store, then each method fused with its
default recipe per seed and the report written per dataset (docs/sweep.md).

    slrbench sweep --methods slgcn,dsta --datasets synthsign-tiny --seeds 0,1,2 --engine ray
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from slrbench.sweep.engines import ENGINES, Failure, ItemResult, SweepProgress, run_local, run_ray
from slrbench.sweep.grid import GridCell, SweepSettings, WorkItem, plan_grid, work_items

__all__ = ["ENGINES", "SweepOutcome", "SweepSettings", "run_sweep"]


@dataclass
class SweepOutcome:
    cells: list[GridCell]
    items: list[WorkItem]  # what this invocation trained (the rest was stored)
    finished: list[ItemResult]
    failures: list[Failure]
    reports: list[Path]
    seconds: dict[str, float]  # phase -> wall time


def run_sweep(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int],
              streams: tuple[str, ...] | None, settings: SweepSettings, *, engine: str = "local",
              address: str | None = None, workers: int | None = None, retries: int = 2,
              fuse: bool = True, reports_root: Path | None = None,
              console: Console | None = None) -> SweepOutcome:
    """Plan the grid, train what is not stored, then fuse and report (skipped where an item
    failed: its method's seed is incomplete)."""
    console = console or Console(emoji=False)
    seconds: dict[str, float] = {}
    tic = time.perf_counter()
    cells = plan_grid(methods, datasets, seeds, streams, settings)
    items = work_items(cells)
    stored = sum(cell.stored for cell in cells)
    console.print(f"grid: {len(cells)} training unit(s), {stored} stored (skipped), "
                  f"{len(items)} to train on engine {engine}"
                  + (f" ({sum(len(i.cells) - 1 for i in items)} shared)" if items else ""))
    seconds["plan"] = time.perf_counter() - tic

    tic = time.perf_counter()
    finished: list[ItemResult] = []
    with _bar(console) as bar:
        task = bar.add_task("sweep", total=len(items))

        def done(result: ItemResult) -> None:
            finished.append(result)
            bar.advance(task)
            statuses = ", ".join(f"{key} {status} {100 * result.test_pi1[key]:.1f} %"
                                 for key, status in result.statuses.items())
            bar.console.print(f"{result.label}: {statuses} ({result.seconds:.0f} s on "
                              f"{result.host}, {result.threads} thread(s))")

        def failed(failure: Failure) -> None:
            bar.advance(task)
            bar.console.print(f"[red]{failure.label}: failed after {failure.attempts} "
                              f"attempt(s): {failure.error}[/red]")

        def retried(label: str, attempt: int, error: str) -> None:
            bar.console.print(f"[yellow]{label}: attempt {attempt} failed ({error}); "
                              "retrying[/yellow]")

        progress = SweepProgress(done, failed, retried)
        if engine == "ray":
            failures = run_ray(items, settings, retries, progress, address, workers)
        else:
            failures = run_local(items, settings, retries, progress)
    seconds["train"] = time.perf_counter() - tic

    reports: list[Path] = []
    if fuse:
        tic = time.perf_counter()
        _fuse(cells, items, failures, settings, console)
        seconds["fuse"] = time.perf_counter() - tic
        tic = time.perf_counter()
        reports = _report(datasets, settings, reports_root, console)
        seconds["report"] = time.perf_counter() - tic
    return SweepOutcome(cells, items, finished, failures, reports, seconds)


def _bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=not console.is_terminal)


def _fuse(cells: Sequence[GridCell], items: Sequence[WorkItem], failures: Sequence[Failure],
          settings: SweepSettings, console: Console) -> None:
    """Fuse the swept streams of each (method, dataset, seed): again when this sweep trained
    one of them, once when no fused record of it exists yet; not after a failed training."""
    from slrbench.methods.registry import get_method
    from slrbench.store import RecordStore
    from slrbench.suite import fuse_with_recipe, fusion_strategies

    store = RecordStore(Path(settings.results))
    failed = {f.label for f in failures}
    trained = {(c.method, c.dataset, c.seed) for item in items if item.label not in failed
               for c in item.cells}
    broken = {(c.method, c.dataset, c.seed) for item in items if item.label in failed
              for c in item.cells}
    groups = dict.fromkeys((c.method, c.dataset, c.seed) for c in cells)
    for method, dataset, seed in groups:
        adapter = get_method(method)
        covered = {h for c in cells if (c.method, c.dataset, c.seed) == (method, dataset, seed)
                   for h in c.heads}
        streams = [s for s in adapter.spec.streams if s in covered]
        if (method, dataset, seed) in broken or len(streams) < 2:
            continue  # a failed training, or one stream: nothing to fuse
        present = {row["stream"] for row in store.find(method=method, dataset=dataset,
                                                       split="test", seed=seed)}
        wanted = {f"fused:{strategy}" for strategy in fusion_strategies(adapter)}
        if (method, dataset, seed) in trained or not wanted <= present:
            fuse_with_recipe(store, adapter, dataset, seed, settings.bootstrap,
                             None if len(streams) == len(adapter.spec.streams) else streams)
        else:
            console.print(f"[dim]{method} on {dataset}, seed {seed}: fused records exist, "
                          "skipped[/dim]")


def _report(datasets: Sequence[str], settings: SweepSettings, reports_root: Path | None,
            console: Console) -> list[Path]:
    from slrbench.cli.common import output_dir
    from slrbench.report import build_report
    from slrbench.store import RecordStore

    store = RecordStore(Path(settings.results))
    paths: list[Path] = []
    for dataset in datasets:
        paths += build_report(store, dataset, "test", reports_root or output_dir(None),
                              ("md", "csv"), console)
    return paths
