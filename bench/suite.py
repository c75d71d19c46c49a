"""The main job for several methods at once: train every stream (identical trainings once,
in parallel), fuse each method with its default recipe, and write the report.

    slrbench run --method all --dataset synthsign-tiny
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from slrbench.datasets.base import Dataset
from slrbench.fusion import FusionOutcome, default_options, fuse_from_store
from slrbench.marks import record_flags
from slrbench.methods.base import MethodAdapter, SolverAdapter
from slrbench.metrics import BootstrapConfig
from slrbench.report import build_report
from slrbench.store import RecordStore
from slrbench.training import RunRequest, StreamOutcome, run_all
from slrbench.training.loop import print_line

SUITE_ABLATIONS = ("loo",)


@dataclass
class SuiteOutcome:
    streams: dict[str, list[StreamOutcome]]  # method -> its streams
    fusions: dict[str, list[FusionOutcome]]  # method -> its fused records
    reports: list[Path]
    seconds: dict[str, float]  # phase -> wall time


def fusion_strategies(adapter: MethodAdapter) -> list[str]:
    """The method's default recipe, plus its val search when the published weights were tuned
    on test (so the report has a clean fused number for every method)."""
    recipe = adapter.spec.fusion
    if recipe is None:
        return ["mean"]
    extra = [recipe.search] if recipe.test_tuned and recipe.search else []
    return [recipe.strategy, *extra]


def fuse_with_recipe(store: RecordStore, adapter: MethodAdapter, dataset: str, seed: int,
                     bootstrap: BootstrapConfig | None,
                     streams: Sequence[str] | None = None) -> list[FusionOutcome]:
    """Fuse one method's stored streams of one seed (`streams`, default the recipe's) with its
    default recipe (and its val search when the published weights were tuned on test), with
    the leave-one-out ablation; a line per fused record. Fewer than two streams: nothing."""
    method = adapter.spec.name
    if len(streams if streams is not None else adapter.spec.streams) < 2:
        return []
    outcomes = []
    for strategy in fusion_strategies(adapter):
        options = default_options(method, dataset, strategy=strategy, seed=seed)
        outcome = fuse_from_store(store, method, dataset, options, streams=streams,
                                  input_seed=seed, ablate=SUITE_ABLATIONS, bootstrap=bootstrap)
        outcomes.append(outcome)
        test = outcome.records["test"]
        flags = record_flags(test.meta, "test")
        print_line(f"fused {method} on {dataset}, seed {seed} ({strategy}"
                   f"{', ' + flags if flags else ''}): test P-I@1 "
                   f"{100 * test.metrics['pi@1']['value']:.1f} %")
    return outcomes


def overrides_for(adapter: MethodAdapter, overrides: dict[str, Any]) -> dict[str, Any]:
    """A solver-fitted method has no training epochs: `--epochs` (train.*) applies to the
    methods trained by the epoch loop only."""
    if isinstance(adapter, SolverAdapter):
        return {k: v for k, v in overrides.items() if not k.startswith("train.")}
    return overrides


def run_suite(
    adapters: Sequence[MethodAdapter],
    dataset: Dataset,
    store: RecordStore,
    reports_root: Path,
    *,
    preset: str | None = None,
    seed: int = 0,
    run_settings: dict[str, Any] | None = None,
    bootstrap: BootstrapConfig | None = None,
    jobs: int | None = None,
    threads: int | None = None,
    console: Console | None = None,
) -> SuiteOutcome:
    """``run_settings``: the other `RunRequest` fields (device, overrides, resume, ...);
    ``jobs`` / ``threads``: see `slrbench.training.Compute.resolve`."""
    console = console or Console(emoji=False)
    seconds: dict[str, float] = {}
    settings = dict(run_settings or {})
    overrides = settings.pop("overrides", None) or {}
    requests = [
        RunRequest(method=adapter, dataset=dataset, preset=preset or adapter.spec.default_preset,
                   streams=adapter.spec.streams, seed=seed, bootstrap=bootstrap,
                   overrides=overrides_for(adapter, overrides), **settings)
        for adapter in adapters
    ]
    tic = time.perf_counter()
    outcomes = run_all(requests, store, console, jobs, threads)
    seconds["train"] = time.perf_counter() - tic

    name = dataset.spec.name
    fusions: dict[str, list[FusionOutcome]] = {}
    tic = time.perf_counter()
    for adapter in adapters:
        fused = fuse_with_recipe(store, adapter, name, seed, bootstrap)
        if fused:
            fusions[adapter.spec.name] = fused
    seconds["fuse"] = time.perf_counter() - tic

    tic = time.perf_counter()
    reports = build_report(store, name, "test", reports_root, ("md", "csv"), console)
    seconds["report"] = time.perf_counter() - tic
    streams = {adapter.spec.name: result for adapter, result in zip(adapters, outcomes,
                                                                      strict=True)}
    return SuiteOutcome(streams, fusions, reports, seconds)
