"""Stream ablations of a fitted fusion: leave-one-out, all subsets, greedy forward selection.

Every row is a subset of the fused streams scored on val and test with P-I/P-C top-1/top-5.

* **Weights.** Leave-one-out and greedy rows re-fit the fusion on the subset with the same
  strategy and tuning split (docs/evaluation.md#ablations): a single stream needs no weights, and
  `hier` with one group left searches that group with its level-1 search. All-subsets rows re-fit
  too by default (`subset_weights="refit"`): all subsets searched together on the tuning split
  (bench/fusion/subset_search.py), since 2^S − 1 separate searches would cost hours. With
  `"restricted"` they use the fitted weights restricted to the subset and renormalised (`hier`:
  within each group, groups keep their level-2 weight; `stack` and all-zero subsets: equal
  weights), which shows what each stream adds to the fitted fusion but understates what a subset
  can do. Cross-fitted fusions restrict or re-fit per fold.
* **Order.** Subsets are ranked by val P-I@1 (then P-I@5, then fewer streams); without val, by
  test P-I@1, and the table says so. Greedy selection adds, at each step, the stream with the
  best tuning-split P-I@1 (val; test only under --allow-test-tuning).
* **Intervals.** Bootstrap CIs (metrics.evaluate on the dense fused scores) for every
  leave-one-out and greedy row, and for the top `ci_rows` subsets plus the full set; other rows
  have point values from the vectorised hit engine (identical up to float32 near-ties).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slrbench.errors import SlrbenchError
from slrbench.fusion.engine import FUSED_KIND, HitEngine, fused_scores, hit_accuracies, normalised
from slrbench.fusion.strategies import (
    FusionOptions,
    FusionResult,
    StreamStack,
    fit_protocol,
    resolve_groups,
)
from slrbench.fusion.subset_search import refit_weights, subset_codes
from slrbench.metrics import BootstrapConfig, evaluate

ABLATIONS = ("loo", "subsets", "greedy")
MAX_SUBSET_STREAMS = 12
DEFAULT_CI_ROWS = 10
HEADLINE = ("pi@1", "pi@5", "pc@1", "pc@5")
# All-subsets weight policies (`ablation.json` weight_policy); loo and greedy always re-fit.
SUBSET_POLICIES = ("refit", "restricted")
POLICY_TEXT = {
    "refit": "loo, greedy and subsets: weights re-fitted on each subset on the tuning split "
             "(loo, greedy: the strategy itself; subsets: all subsets searched together for the "
             "same objective, docs/evaluation.md#ablations; fixed, mean and stack fit nothing "
             "per subset: restricted or equal weights)",
    "restricted": "loo and greedy: weights re-fitted on each subset (same strategy and tuning "
                  "split; one stream: weight 1; hier with one group left: its level-1 search); "
                  "subsets: fitted weights restricted to the subset and renormalised (hier: "
                  "within each group; stack and all-zero subsets: equal weights), not re-fitted",
}
WeightFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class AblationTable:
    name: str
    frame: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)  # also in the fused record's block
    side: dict[str, Any] = field(default_factory=dict)  # ablation.json only

    @property
    def file_name(self) -> str:
        return f"ablation-{self.name}.csv"


def check_kinds(kinds: Sequence[str], n_streams: int, has_val: bool,
                allow_test_tuning: bool, subset_weights: str = "refit") -> tuple[str, ...]:
    """Validate --ablate (and --subset-weights) before anything is fitted."""
    unknown = [k for k in kinds if k not in ABLATIONS]
    if unknown:
        raise SlrbenchError(f"--ablate: found {unknown}; expected a comma-separated subset of "
                            f"{', '.join(ABLATIONS)}")
    if subset_weights not in SUBSET_POLICIES:
        raise SlrbenchError(f"--subset-weights: found {subset_weights!r}; expected one of "
                            f"{', '.join(SUBSET_POLICIES)}")
    if "subsets" in kinds and n_streams > MAX_SUBSET_STREAMS:
        raise SlrbenchError(f"--ablate subsets: found {n_streams} streams; expected at most "
                            f"{MAX_SUBSET_STREAMS} ({2 ** MAX_SUBSET_STREAMS - 1} subsets)")
    if "greedy" in kinds and not has_val and not allow_test_tuning:
        raise SlrbenchError("--ablate greedy: selects streams on val; found no val records; "
                            "expected val records (or --allow-test-tuning, marked †)")
    return tuple(dict.fromkeys(kinds))


class _Scorer:
    """Hits of stream subsets on val and test under the fitted (or per-fold) weights: the fitted
    weights restricted to each subset, or `weigh` (one masks -> weights function per fit)."""

    def __init__(self, result: FusionResult, val: StreamStack | None, test: StreamStack,
                 bootstrap: BootstrapConfig | None,
                 weigh: Sequence[WeightFn] | None = None) -> None:
        self.result, self.test, self.bootstrap = result, test, bootstrap
        self.streams = test.streams
        self.fits = result.fits()
        self.weigh = (list(weigh) if weigh is not None
                      else [fitted.subset_weights for _, fitted in self.fits])
        single = result.folds is None
        self.val = (HitEngine(val.scores, val.labels)
                    if val is not None and single else None)
        self.val_fitted = self.fits[0][1] if single else None
        self.test_engines = [
            HitEngine(test.scores if rows is None else test.scores[:, rows],
                      test.labels if rows is None else test.labels[rows])
            for rows, _ in self.fits]
        self._ci_cache: dict[bytes, dict[str, float | None]] = {}

    def metrics(self, masks: np.ndarray) -> dict[str, np.ndarray]:
        """{"val_pi@1": (B,), …, "test_pc@5": (B,)} for bool masks (B, S)."""
        out: dict[str, np.ndarray] = {}
        if self.val is not None and self.val_fitted is not None:
            hits = self.val.hits(self.weigh[0](masks))
            out.update({f"val_{k}": v for k, v in self.val.accuracies(hits).items()})
        test_hits: dict[int, np.ndarray] = {}
        for (rows, _), weigh, engine in zip(self.fits, self.weigh, self.test_engines):
            part = engine.hits(weigh(masks))
            for k, h in part.items():
                full = test_hits.setdefault(k, np.zeros((masks.shape[0], self.test.n), bool))
                full[:, slice(None) if rows is None else rows] = h
        out.update({f"test_{k}": v
                    for k, v in hit_accuracies(test_hits, self.test.labels).items()})
        return out

    def weights(self, mask: np.ndarray) -> dict[str, float] | None:
        if self.result.folds is not None:
            return None  # one weight vector per fold
        w = normalised(self.weigh[0](mask[None])[0])
        return {s: round(float(x), 6) for s, x, on in zip(self.streams, w, mask) if on}

    def with_ci(self, mask: np.ndarray) -> dict[str, float | None]:
        """Test metrics with bootstrap CIs from metrics.evaluate on the dense fused scores."""
        key = np.asarray(mask, bool).tobytes()
        if key not in self._ci_cache:
            fused = np.empty(self.test.scores.shape[1:], dtype=np.float32)
            for (rows, _), weigh in zip(self.fits, self.weigh):
                w = weigh(mask[None])[0]
                part = self.test.scores if rows is None else self.test.scores[:, rows]
                fused[slice(None) if rows is None else rows] = fused_scores(part, w)
            # Subsets are weighted sums even for stack, so their kind follows the space.
            kind = FUSED_KIND[self.result.options.space]
            evaluation = evaluate(fused, self.test.labels, score_kind=kind,
                                  bootstrap=self.bootstrap)
            row: dict[str, float | None] = {}
            for name in HEADLINE:
                value = evaluation.metrics.get(name)
                if value is not None:
                    row[f"test_{name}"] = value.value
                    row[f"test_{name}_lo"] = value.ci_low
                    row[f"test_{name}_hi"] = value.ci_high
            self._ci_cache[key] = row
        return self._ci_cache[key]


def subset_options(options: FusionOptions, streams: Sequence[str]) -> FusionOptions:
    """Options that re-fit `options` on a stream subset."""
    if len(streams) == 1:
        return replace(options, strategy="mean", crossfit=None)  # nothing to weigh
    if options.strategy == "hier" and len(resolve_groups(options, streams)) < 2:
        return replace(options, strategy=options.level_search)
    return options


class _RefitScorer:
    """Rows of stream subsets whose fusion is re-fitted on each subset (fits cached)."""

    def __init__(self, result: FusionResult, val: StreamStack | None, test: StreamStack,
                 bootstrap: BootstrapConfig | None) -> None:
        self.options, self.val, self.test, self.bootstrap = result.options, val, test, bootstrap
        self.streams = test.streams
        everything = np.ones(len(self.streams), dtype=bool).tobytes()
        self._scorers = {everything: _Scorer(result, val, test, bootstrap)}

    def row(self, mask: np.ndarray, with_ci: bool = True) -> dict[str, Any]:
        key = np.asarray(mask, bool).tobytes()
        if key not in self._scorers:
            names = [s for s, on in zip(self.streams, mask) if on]
            val = self.val.select(names) if self.val is not None else None
            test = self.test.select(names)
            fitted = fit_protocol(subset_options(self.options, names), val, test)
            self._scorers[key] = _Scorer(fitted, val, test, self.bootstrap)
        scorer = self._scorers[key]
        everything = np.ones((1, len(scorer.streams)), dtype=bool)
        return _rows(scorer, everything, np.array([with_ci]))[0]


def _label(streams: Sequence[str], mask: np.ndarray) -> str:
    return "+".join(s for s, on in zip(streams, mask) if on)


def _rows(scorer: _Scorer, masks: np.ndarray, ci: np.ndarray) -> list[dict[str, Any]]:
    values = scorer.metrics(masks)
    rows = []
    for i, mask in enumerate(masks):
        row: dict[str, Any] = {"streams": _label(scorer.streams, mask),
                               "n_streams": int(mask.sum())}
        weights = scorer.weights(mask)
        row["weights"] = json.dumps(weights) if weights is not None else ""
        row.update({name: float(v[i]) for name, v in values.items()})
        if ci[i]:
            row.update(scorer.with_ci(mask))
        rows.append(row)
    return rows


def _tuning_key(values: dict[str, Any], split: str) -> tuple[float, ...]:
    return (values.get(f"{split}_pi@1", 0.0), values.get(f"{split}_pi@5", 0.0),
            values.get(f"{split}_pc@1", 0.0))


def leave_one_out(scorer: _RefitScorer) -> AblationTable:
    s = len(scorer.streams)
    masks = np.ones((s + 1, s), dtype=bool)
    masks[np.arange(1, s + 1), np.arange(s)] = False
    frame = pd.DataFrame([scorer.row(mask) for mask in masks])
    frame.insert(0, "removed", ["none"] + list(scorer.streams))
    for split in ("val", "test"):
        if f"{split}_pi@1" in frame:
            frame[f"delta_{split}_pi@1"] = frame[f"{split}_pi@1"] - frame[f"{split}_pi@1"].iloc[0]
    return AblationTable("loo", frame)


def ranking_split(columns: Any) -> str:
    """The split that ranks subsets and drives greedy selection: val when the table has val
    columns, else test (only reachable without val records)."""
    return "val" if "val_pi@1" in columns else "test"


def subset_masks(n_streams: int) -> np.ndarray:
    """Every non-empty subset as bool (2^S − 1, S), row i = subset code i + 1."""
    codes = np.arange(1, 2 ** n_streams)
    return ((codes[:, None] >> np.arange(n_streams)[None, :]) & 1).astype(bool)


def _lookup(masks: np.ndarray, weights: np.ndarray) -> WeightFn:
    """masks -> their rows of `weights` (the row of each subset in `masks`)."""
    row_of = {int(code): i for i, code in enumerate(subset_codes(masks))}
    return lambda query: weights[[row_of[int(c)] for c in subset_codes(query)]]


def all_subsets(result: FusionResult, val: StreamStack | None, test: StreamStack,
                bootstrap: BootstrapConfig | None, ci_rows: int,
                policy: str = "refit") -> AblationTable:
    """Every subset's row, weights re-fitted (`refit`) or restricted (`restricted`)."""
    masks = subset_masks(len(test.streams))
    extra: dict[str, np.ndarray] = {}
    side: dict[str, Any] = {}
    if policy == "refit":
        refit = refit_weights(result, val, test, masks)
        scorer = _Scorer(result, val, test, bootstrap,
                         [_lookup(masks, w) for w in refit.weights])
        if refit.objective is not None and refit.nll is not None:
            extra = {"objective_pi@1": refit.objective, "objective_nll": refit.nll}
        side["subsets_search"] = refit.info
    else:
        scorer = _Scorer(result, val, test, bootstrap)
    table = _subset_table(scorer, masks, ci_rows, extra)
    table.side.update(side)
    return table


def _subset_table(scorer: _Scorer, masks: np.ndarray, ci_rows: int,
                  extra: dict[str, np.ndarray]) -> AblationTable:
    codes = subset_codes(masks)
    values = scorer.metrics(masks)
    ranked_on = ranking_split(values)
    keys = [values[f"{ranked_on}_{m}"] for m in ("pi@1", "pi@5") if f"{ranked_on}_{m}" in values]
    # Best first: higher pi@1, higher pi@5, fewer streams, then stream order.
    order = np.lexsort([codes, masks.sum(axis=1)] + [-k for k in reversed(keys)])
    rows = []
    full = int(np.flatnonzero(masks.all(axis=1))[0])
    for rank, i in enumerate(order, start=1):
        row: dict[str, Any] = {"rank": rank, "streams": _label(scorer.streams, masks[i]),
                               "n_streams": int(masks[i].sum())}
        weights = scorer.weights(masks[i])
        row["weights"] = json.dumps(weights) if weights is not None else ""
        row.update({name: float(v[i]) for name, v in extra.items()})
        row.update({name: float(v[i]) for name, v in values.items()})
        if rank <= ci_rows or i == full:
            row.update(scorer.with_ci(masks[i]))
        rows.append(row)
    return AblationTable("subsets", pd.DataFrame(rows), {"ranked_on": ranked_on})


def greedy_forward(scorer: _RefitScorer) -> AblationTable:
    split = "val" if scorer.val is not None else "test"
    s = len(scorer.streams)
    chosen = np.zeros(s, dtype=bool)
    rows = []
    for step in range(1, s + 1):
        options = np.flatnonzero(~chosen)
        candidates = []
        for stream in options:
            mask = chosen.copy()
            mask[stream] = True
            candidates.append(mask)
        # Best tuning-split pi@1, then pi@5, then pc@1; earlier streams win exact ties.
        keys = [_tuning_key(scorer.row(mask, with_ci=False), split) for mask in candidates]
        best = max(range(options.size), key=lambda i: (keys[i], -i))
        chosen = candidates[best]
        rows.append({"step": step, "added": scorer.streams[options[best]], **scorer.row(chosen)})
    return AblationTable("greedy", pd.DataFrame(rows), {"selected_on": split})


def run_ablations(kinds: Sequence[str], result: FusionResult, val: StreamStack | None,
                  test: StreamStack, bootstrap: BootstrapConfig | None,
                  ci_rows: int = DEFAULT_CI_ROWS,
                  subset_weights: str = "refit") -> dict[str, AblationTable]:
    """The requested ablation tables (reads test labels only to score: every fit, the subsets'
    re-fit included, reads the tuning split; call only after fitting)."""
    if not kinds:
        return {}
    refit = _RefitScorer(result, val, test, bootstrap)
    tables: dict[str, AblationTable] = {}
    for kind in kinds:
        if kind == "loo":
            tables[kind] = leave_one_out(refit)
        elif kind == "subsets":
            tables[kind] = all_subsets(result, val, test, bootstrap, ci_rows, subset_weights)
        elif kind == "greedy":
            tables[kind] = greedy_forward(refit)
    return tables


def ablation_summary(tables: dict[str, AblationTable], result: FusionResult,
                     ci_rows: int, subset_weights: str = "refit") -> dict[str, Any]:
    """The fusion block's `ablations` entry (`ablation.json` adds the tables' side facts).

    `weight_policy` is the all-subsets policy, `refit` or `restricted` (POLICY_TEXT says what
    each means; loo and greedy always re-fit)."""
    return {
        "kinds": list(tables),
        "files": {name: table.file_name for name, table in tables.items()},
        "weight_policy": subset_weights,
        "ci_policy": (f"bootstrap CIs for every loo and greedy row, and for the top {ci_rows} "
                      "subsets plus the full set; other rows: point values"),
        "strategy": result.options.strategy,
        "tuned_on": result.tuned_on,
        **{f"{name}_{k}": v for name, table in tables.items() for k, v in table.notes.items()},
    }


def write_tables(tables: dict[str, AblationTable], summary: dict[str, Any],
                 directory: Path) -> dict[str, Path]:
    """CSV per table plus ablation.json in `directory`; returns side-file name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for table in tables.values():
        path = directory / table.file_name
        table.frame.to_csv(path, index=False)
        files[table.file_name] = path
    side = {key: value for table in tables.values() for key, value in table.side.items()}
    path = directory / "ablation.json"
    path.write_text(json.dumps({**summary, **side}, indent=2) + "\n", encoding="utf-8")
    files["ablation.json"] = path
    return files
