"""Several seeds of one run as one row of the main table: the records that differ only in their
seed are pooled, each metric shown as the mean and sample standard deviation over the seeds
(docs/evaluation.md#several-seeds). The writers (Markdown, CSV, LaTeX, terminal) render the
groups made here; the per-seed records stay available in a table of their own.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slrbench.marks import record_flags
from slrbench.store.provenance import canonical_json, config_sha256

# The anchor of the per-seed table in the Markdown and HTML reports (GitHub's slug of its heading).
SEED_HEADING = "Per-seed results"
SEED_ANCHOR = "per-seed-results"


@dataclass(frozen=True)
class Spread:
    """One metric over the seeds of a group: mean, sample standard deviation (ddof = 1; None
    with fewer than two values) and the number of seeds that have the metric."""

    mean: float
    std: float | None
    n: int


@dataclass(frozen=True)
class SeedGroup:
    """The newest records of one (method, preset, stream, configuration), one per seed, in the
    order the report sorts them (by seed)."""

    metas: tuple[dict[str, Any], ...]

    @property
    def first(self) -> dict[str, Any]:
        return self.metas[0]

    @property
    def pooled(self) -> bool:
        return len(self.metas) > 1

    @property
    def seeds(self) -> tuple[int | None, ...]:
        return tuple(meta["seed"] for meta in self.metas)

    def spread(self, key: str) -> Spread | None:
        """The metric `key` over the seeds that have it; None when none has it."""
        values = [float(metric["value"]) for meta in self.metas
                  if isinstance(metric := (meta.get("metrics") or {}).get(key), dict)
                  and metric.get("value") is not None]
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else None
        return Spread(statistics.fmean(values), std, len(values))

    def flags(self, split: str) -> str:
        """Every mark any seed carries, in first-seen order: a pooled number is no cleaner than
        its least clean seed."""
        marks = ""
        for meta in self.metas:
            marks += "".join(flag for flag in record_flags(meta, split) if flag not in marks)
        return marks

    def common(self, field: str, separator: str = ", ") -> Any:
        """A field the seeds share (as stored), or its distinct values joined by `separator`."""
        values = [meta.get(field) for meta in self.metas]
        if all(value == values[0] for value in values):
            return values[0]
        return separator.join(dict.fromkeys(str(value) for value in values))


def group_seeds(metas: Iterable[dict[str, Any]],
                input_configs: Mapping[str, str]) -> list[SeedGroup]:
    """Pool the records that differ only in their seed, keeping the order of first appearance.

    `input_configs` maps run ids to their `config_sha256`: a fused record's own configuration
    names its input run ids, which differ from seed to seed, so fused records are compared by
    their fusion options and the configurations of their inputs instead. Records without a seed
    (imports, fusions of mixed seeds) or whose inputs are not in the store stay on their own.
    A seed counts once: of two records with the same key and seed (a fusion repeated on re-run
    inputs), the newer is pooled and the older keeps a row of its own."""
    rows: list[list[dict[str, Any]]] = []
    pools: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for meta in metas:
        key = pool_key(meta, input_configs)
        pool = pools.get(key) if key is not None else None
        if pool is None:
            rows.append([meta])
            if key is not None:
                pools[key] = rows[-1]
            continue
        twin = next((other for other in pool if other["seed"] == meta["seed"]), None)
        if twin is None:
            pool.append(meta)
            continue
        older, newer = sorted((twin, meta), key=_newness)
        pool[pool.index(twin)] = newer
        rows.append([older])
    return [SeedGroup(tuple(members)) for members in rows]


def _newness(meta: Mapping[str, Any]) -> tuple[str, str]:
    return (str(meta.get("finished_at") or ""), str(meta["run_id"]))


def pool_key(meta: Mapping[str, Any], input_configs: Mapping[str, str]) -> tuple[str, ...] | None:
    """What records must share to be pooled (everything but the seed); None: never pooled."""
    if meta.get("seed") is None:
        return None
    configuration = _fused_configuration(meta, input_configs) if meta.get("fusion") \
        else meta["config_sha256"]
    if configuration is None:
        return None
    return (str(meta["method"]), str(meta.get("preset")),
            canonical_json(meta.get("overrides") or {}), str(meta["stream"]), configuration)


def _fused_configuration(meta: Mapping[str, Any],
                         input_configs: Mapping[str, str]) -> str | None:
    """The fusion request without its input run ids, plus each input stream's configuration."""
    request = {k: v for k, v in (meta.get("config") or {}).items() if k != "inputs"}
    fusion = request.get("fusion")
    if isinstance(fusion, dict):
        # The search seed is part of what varies from seed to seed (the main job and sweeps
        # search with the inputs' seed), not of the configuration.
        request["fusion"] = {k: v for k, v in fusion.items() if k != "seed"}
    inputs = (meta.get("fusion") or {}).get("inputs") or []
    configs = [(str(i.get("stream")), input_configs.get(str(i.get("run_id")))) for i in inputs]
    if not configs or any(config is None for _, config in configs):
        return None  # an input we cannot see might differ: do not pool
    return config_sha256({"request": request, "inputs": sorted(configs)})


def seed_label(seeds: Sequence[int | None], separator: str = ", ") -> str:
    """The seeds of a row as one cell: `0, 1, 2`; `–` for a record without one."""
    return separator.join("–" if seed is None else str(seed) for seed in seeds)
