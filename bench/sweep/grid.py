"""The benchmark grid of `slrbench sweep`: methods x datasets x seeds x training units, planned
the way `slrbench run` plans (same config hashes, same skip rule), and cut into work items that
a worker trains in one go.

A work item holds the grid cells of one dataset and seed whose *training* is identical (LGF-SLR's
body streams are SL-GCN's streams): the runner trains it once and stores copies for the other
methods, on whichever engine runs the item, so a Ray sweep stores what a sequential one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slrbench.metrics import BootstrapConfig


@dataclass(frozen=True)
class SweepSettings:
    """What every task of one sweep shares (the options of `slrbench run`)."""

    results: str  # the one record store, reachable from every worker (docs/sweep.md)
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 1
    bootstrap: BootstrapConfig | None = None


@dataclass(frozen=True)
class GridCell:
    """One training unit of one method on one dataset with one seed."""

    method: str
    dataset: str
    seed: int
    unit: str
    heads: tuple[str, ...]
    config_sha256: str
    training_sha256: str
    cost: float
    stored: bool

    @property
    def label(self) -> str:
        return f"{self.method}/{self.unit} on {self.dataset}, seed {self.seed}"


@dataclass(frozen=True)
class WorkItem:
    """Grid cells one worker trains together (one training, stored for each cell's method)."""

    cells: tuple[GridCell, ...]

    @property
    def dataset(self) -> str:
        return self.cells[0].dataset

    @property
    def seed(self) -> int:
        return self.cells[0].seed

    @property
    def label(self) -> str:
        first = self.cells[0]
        also = "".join(f" (+ {c.method}/{c.unit})" for c in self.cells[1:])
        return first.label + also

    @property
    def cost(self) -> float:
        return max(cell.cost for cell in self.cells)


def plan_grid(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int],
              streams: tuple[str, ...] | None, settings: SweepSettings) -> list[GridCell]:
    """Every cell of the grid, in method, dataset, seed, unit order, with whether its records
    are stored already (same config hash, as `slrbench run` decides)."""
    from slrbench.datasets.registry import load_dataset
    from slrbench.store import RecordStore
    from slrbench.training.runner import plan_units

    store = RecordStore(Path(settings.results))
    cells = []
    for name in datasets:
        dataset = load_dataset(name)
        for method in methods:
            for seed in seeds:
                request = build_request(method, dataset, seed, streams, settings)
                cells += [GridCell(method, name, seed, planned.unit, planned.heads,
                                   planned.config_sha256, planned.training_sha256, planned.cost,
                                   planned.stored)
                          for planned in plan_units(request, store)]
    return cells


def work_items(cells: Sequence[GridCell]) -> list[WorkItem]:
    """Cells still to train, grouped by identical training, longest first (so no long training
    starts last while other workers sit idle)."""
    groups: dict[tuple[str, int, str], list[GridCell]] = {}
    for cell in cells:
        if not cell.stored:
            key = (cell.dataset, cell.seed, cell.training_sha256)
            groups.setdefault(key, []).append(cell)
    items = [WorkItem(tuple(group)) for group in groups.values()]
    return sorted(items, key=lambda item: -item.cost)


def build_request(method: str, dataset: Any, seed: int, streams: tuple[str, ...] | None,
                  settings: SweepSettings) -> Any:
    """The `RunRequest` of one method on one dataset and seed; `streams` None: all of them.
    A sweep always resumes an interrupted training (a killed sweep continues where it stopped).
    """
    from slrbench.methods.registry import get_method
    from slrbench.suite import overrides_for
    from slrbench.training import RunRequest, select_device

    adapter = get_method(method)
    return RunRequest(method=adapter, dataset=dataset,
                      preset=settings.preset or adapter.spec.default_preset,
                      streams=adapter.check_streams(list(streams) if streams else None), seed=seed,
                      device=select_device(settings.device),
                      overrides=overrides_for(adapter, settings.overrides), resume=True,
                      bootstrap=settings.bootstrap, progress=False)
