"""Fusion weights re-fitted on every stream subset at once (`--ablate subsets`, weight policy
`refit`; docs/evaluation.md#ablations).

The objective is the strategies' own (docs/evaluation.md#objective): the most top-1 hits on the
tuning split under the pessimistic tie rule, ties broken by the lower NLL of the fused scores,
then by the earlier vector. A `bayes` search per subset (200 TPE trials, each scored alone) would
take hours for 4,095 subsets; this search gets close to its quality in well under a minute
(docs/PERFORMANCE.md) by scoring many subsets' candidates together:

* **Order.** Subsets are searched by size, all subsets of one size together, so each one can
  start from its best parent (the subset less one stream, that stream at weight 0: the same fused
  scores). A subset therefore never ends below any of its parents on the objective's hits.
* **Start points.** Equal weights and the recipe's weights (the starts `bayes` queues), the
  fitted weights restricted to the subset (so a row never ends below the restricted row), and the
  best parent; all of one size are scored in one engine call.
* **Coordinate ascent** from the best start over a shared grid of `GRID_STEPS` values spanning
  the strategy's bounds: one stream's weight at a time, the whole line of grid values counted at
  once (bench/fusion/lines.py; upper bounds, nearly exact), one line per subset of the size in
  one batch. A move is taken only when the engine's exact count beats the current point. At most
  `MAX_SWEEPS` sweeps over the streams; a subset stops after a sweep without a move, or once it
  reaches its upper bound (the samples no class dominates in all of its streams).
* **Ties.** Among the points visited with the most hits (start points and the end of the
  ascent), the lowest NLL wins (dense, `HitEngine.nll`), then the earlier start.

`hier` is searched over its flat per-stream weights: a two-level fusion is linear in the streams
(docs/evaluation.md#hierarchical-fusion) and every non-negative flat vector is a two-level one, so
the family is the same and the objective is its final (level-2) one. The fitted weights only start
the search: test labels never enter it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from slrbench.fusion.engine import HitEngine, normalised
from slrbench.fusion.lines import LineCounter
from slrbench.fusion.strategies import (
    FittedFusion,
    FusionOptions,
    FusionResult,
    StreamStack,
    fit,
    resolve_groups,
)

GRID_STEPS = 101  # 0, 0.02, …, 2 over the default bounds
MAX_SWEEPS = 4
MAX_TIED = 16  # tied visited points compared by NLL per subset


def subset_codes(masks: np.ndarray) -> np.ndarray:
    """Bit s of a subset's code is stream s (int64 (B,))."""
    return (np.asarray(masks, dtype=np.int64) << np.arange(masks.shape[1])).sum(axis=1)


def upper_bounds(scores: np.ndarray, labels: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Most top-1 hits any weights can reach on each subset: samples where no class is at or
    above the true class in every stream of the subset (such a class ties or beats it for all
    non-negative weights, a miss under the pessimistic rule). int64 (B,)."""
    s_count, n, k = scores.shape
    true = scores[:, np.arange(n), labels]
    size = 1 << s_count
    dominated = np.zeros(masks.shape[0], dtype=np.int64)
    codes = subset_codes(masks)
    index = np.arange(size)
    for start in range(0, n, 256):
        part = np.arange(start, min(n, start + 256))
        # bits[i, c]: the streams in which class c is at or above sample i's true class.
        bits = np.zeros((part.size, k), dtype=np.int64)
        for s in range(s_count):
            bits |= (scores[s, part] >= true[s, part, None]).astype(np.int64) << s
        bits[np.arange(part.size), labels[part]] = 0  # the true class itself
        # dom[i, m]: some class is at or above y in every stream of m (closed under subsets).
        dom = np.zeros((part.size, size), dtype=np.bool_)
        dom[np.arange(part.size)[:, None], bits] = True
        for b in range(s_count):
            above = index[(index >> b) & 1 == 1]
            below = above ^ (1 << b)
            dom[:, below] = dom[:, below] | dom[:, above]
        dominated += dom[:, codes].sum(axis=0)
    return n - dominated


@dataclass
class SubsetSearch:
    """Best weights per subset on one tuning split, and what the search did."""

    weights: np.ndarray  # (B, S), zero outside each subset
    hits: np.ndarray  # (B,) top-1 hits on the tuning split
    nll: np.ndarray  # (B,) NLL of the chosen vector where a tie was broken, else NaN
    n: int
    info: dict[str, Any] = field(default_factory=dict)


class _Search:
    def __init__(self, stack: StreamStack, masks: np.ndarray, bounds: tuple[float, float],
                 grid_steps: int, max_sweeps: int) -> None:
        self.stack, self.masks = stack, np.asarray(masks, dtype=bool)
        self.engine = HitEngine(stack.scores, stack.labels, ks=(1,))
        self.lines = LineCounter(self.engine, np.linspace(bounds[0], bounds[1], grid_steps))
        self.max_sweeps = max_sweeps
        self.bound = upper_bounds(stack.scores, stack.labels, self.masks)
        b = self.masks.shape[0]
        self.weights = np.zeros(self.masks.shape)
        self.hits = np.full(b, -1, dtype=np.int64)
        self.nll = np.full(b, np.nan)
        self.tied: dict[int, list[np.ndarray]] = {}
        self.row_of = {int(c): i for i, c in enumerate(subset_codes(self.masks))}
        self.counts = {"vectors": 0, "lines": 0, "moves": 0, "at_upper_bound": 0,
                       "ties_broken": 0}

    def exact(self, weights: np.ndarray) -> np.ndarray:
        self.counts["vectors"] += weights.shape[0]
        if not weights.shape[0]:
            return np.zeros(0, dtype=np.int64)
        return self.engine.hit_counts(weights)

    def run(self, starts: list[np.ndarray]) -> None:
        sizes = self.masks.sum(axis=1)
        for k in range(1, self.masks.shape[1] + 1):
            rows = np.flatnonzero(sizes == k)
            if not rows.size:
                continue
            options = self._starts(rows, starts)
            for row, points in zip(rows, options):
                self.weights[row], self.hits[row] = points[0]
            if k > 1:
                self._ascend(rows)
            for row, points in zip(rows, options):
                self._settle(int(row), points + [(self.weights[row].copy(), int(self.hits[row]))])
        self.counts["at_upper_bound"] = int((self.hits >= self.bound).sum())
        self._break_ties()

    def _settle(self, row: int, points: list[tuple[np.ndarray, int]]) -> None:
        """The row's best visited point (the first with the most hits); other distinct points
        with as many hits go to the NLL tie-break."""
        top = max(h for _, h in points)
        best = _distinct([w for w, h in points if h == top])
        self.weights[row], self.hits[row] = best[0], top
        if len(best) > 1:
            self.tied[row] = best[:MAX_TIED]

    def _parent(self, row: int) -> int | None:
        """Best searched parent (subset less one stream) of `row`, by hits, then stream order."""
        code, best = int(subset_codes(self.masks[row:row + 1])[0]), None
        for s in np.flatnonzero(self.masks[row]):
            parent = self.row_of.get(code ^ (1 << int(s)))
            if parent is not None and self.hits[parent] >= 0 and (
                    best is None or self.hits[parent] > self.hits[best]):
                best = parent
        return best

    def _starts(self, rows: np.ndarray,
                starts: list[np.ndarray]) -> list[list[tuple[np.ndarray, int]]]:
        """Each row's distinct start points with their exact hits, best first (ties: in the
        order given, the best parent last)."""
        per_row: list[list[np.ndarray]] = []
        for row in rows:
            options = [start[row] * self.masks[row] for start in starts]
            per_row.append(_distinct([w for w in options if np.isfinite(w).all() and w.sum() > 0]))
        hits = self.exact(np.array([w for options in per_row for w in options]))
        out, at = [], 0
        for row, options in zip(rows, per_row):
            scored = list(zip(options, hits[at:at + len(options)].tolist()))
            at += len(options)
            parent = self._parent(int(row))
            # The parent's weights give the parent's fused scores: its hits, no rescoring.
            if parent is not None:
                mine = self.weights[parent].copy()
                if len(_distinct(options + [mine])) > len(options):
                    scored.append((mine, int(self.hits[parent])))
            out.append(sorted(scored, key=lambda point: -point[1]))  # stable: order kept
        return out

    def _ascend(self, rows: np.ndarray) -> None:
        """Coordinate ascent of every subset of one size at once: per round, one line along
        the weight of each active subset's next stream. A subset stays active while a sweep over
        its streams moves it and it is below its upper bound."""
        members = np.array([np.flatnonzero(self.masks[row]) for row in rows])
        active = self.hits[rows] < self.bound[rows]
        for _ in range(self.max_sweeps):
            moved = np.zeros(rows.size, dtype=bool)
            for position in range(members.shape[1]):
                now = np.flatnonzero(active)
                if now.size:
                    moved[now] |= self._line(rows[now], members[now, position])
                    active &= self.hits[rows] < self.bound[rows]
            active &= moved
            if not active.any():
                break

    def _line(self, rows: np.ndarray, streams: np.ndarray) -> np.ndarray:
        """One line per row through its current point along `streams`; take exact gains."""
        base = self.weights[rows]
        counts = self.lines.counts(base, streams)
        self.counts["lines"] += rows.size
        grid = self.lines.grid
        current = base[np.arange(rows.size), streams]
        top = counts.max(axis=1)
        # Among the grid values with the most hits, the one nearest the current weight.
        distance = np.abs(grid[None, :] - current[:, None])
        choice = np.argmin(np.where(counts == top[:, None], distance, np.inf), axis=1)
        # Counts are upper bounds: a line that cannot beat the current hits is left as it is.
        propose = np.flatnonzero(top > self.hits[rows])
        moved = np.zeros(rows.size, dtype=bool)
        if not propose.size:
            return moved
        candidate = base[propose].copy()
        candidate[np.arange(propose.size), streams[propose]] = grid[choice[propose]]
        hits = self.exact(candidate)
        better = hits > self.hits[rows[propose]]
        taken = propose[better]
        self.weights[rows[taken]] = candidate[better]
        self.hits[rows[taken]] = hits[better]
        self.counts["moves"] += int(taken.size)
        moved[taken] = True
        return moved

    def _break_ties(self) -> None:
        for row, options in sorted(self.tied.items()):
            nll = self.engine.nll(np.array(options), self.stack.space)
            self.weights[row] = options[int(np.argmin(nll))]
            self.nll[row] = float(nll.min())
            self.counts["ties_broken"] += 1


def _distinct(vectors: list[np.ndarray]) -> list[np.ndarray]:
    """Vectors in order, without repeats of an earlier one's direction (same fused ranks)."""
    kept: list[np.ndarray] = []
    directions: list[np.ndarray] = []  # normalised(kept[i]), computed once
    for w in vectors:
        direction = normalised(w)
        if not any(np.allclose(direction, d, rtol=0, atol=1e-12) for d in directions):
            kept.append(np.asarray(w, dtype=np.float64))
            directions.append(direction)
    return kept


def search_subsets(stack: StreamStack, masks: np.ndarray, starts: list[np.ndarray],
                   bounds: tuple[float, float], grid_steps: int = GRID_STEPS,
                   max_sweeps: int = MAX_SWEEPS) -> SubsetSearch:
    """Best weights on `stack` (the tuning split) for every subset in bool `masks` (B, S).

    `starts`: (B, S) start points in order of preference (rows summing to zero or non-finite are
    skipped). Subsets whose parents are in `masks` start from them too.
    """
    tic = time.perf_counter()
    search = _Search(stack, masks, bounds, grid_steps, max_sweeps)
    search.run([np.asarray(s, dtype=np.float64) for s in starts])
    info = {"search": SEARCH, "grid": [float(bounds[0]), float(bounds[1]), grid_steps],
            "max_sweeps": max_sweeps, **search.counts,
            "seconds": round(time.perf_counter() - tic, 2)}
    return SubsetSearch(search.weights, search.hits, search.nll, stack.n, info)


# ------------------------------------------------------------------------------ per strategy


SEARCH = ("coordinate ascent over a shared grid, subsets by size, from the best of equal, "
          "recipe, restricted and best-parent weights; ties: lower NLL")
SEARCHED = frozenset({"bayes", "hier"})
UNSEARCHED = {"fixed": "fixed weights fit nothing", "mean": "equal weights fit nothing",
              "stack": "stack has no per-stream weights (equal-weight subsets)"}


@dataclass
class SubsetRefit:
    """Re-fitted weights of every subset: one (B, S) array per fit (one, or one per
    cross-fitting fold), and the tuning-split objective of a single fit."""

    weights: list[np.ndarray]
    objective: np.ndarray | None  # (B,) top-1 on the tuning split; None when cross-fitted
    nll: np.ndarray | None  # (B,) NLL where it broke a tie, else NaN
    info: dict[str, Any]


def _recipe_start(options: FusionOptions, streams: tuple[str, ...],
                  masks: np.ndarray) -> np.ndarray | None:
    """The recipe's weights on each subset, as `bayes` (flat; NaN rows, skipped, where the
    recipe lacks a member) or `hier` (the recipe within each group, groups equal at level 2;
    None unless the recipe has every stream) would start from them."""
    if options.recipe is None:
        return None
    table = options.recipe.weights_for(options.dataset)
    flat = np.array([float(table.get(s, np.nan)) for s in streams])
    if options.strategy != "hier":
        return np.where(masks, flat, 0.0)
    if np.isnan(flat).any():
        return None
    groups = resolve_groups(options, streams)
    details = {"group_weights": {g: [float(table[s]) for s in members]
                                 for g, members in groups.items()},
               "level_weights": dict.fromkeys(groups, 1.0)}
    return FittedFusion("hier", streams, options.space, flat, details, groups).subset_weights(masks)


def _tuning_stacks(result: FusionResult, val: StreamStack | None,
                   test: StreamStack) -> list[StreamStack | None]:
    """What each fit of `result` was tuned on: val; test under test tuning; for cross-fitting,
    each fold's other folds (never the rows a fold scores); None when nothing was fitted."""
    if result.folds is not None:
        return [test.take(np.setdiff1d(np.arange(test.n), rows)) for rows, _ in result.folds]
    if result.tuned_on is None:
        return [None]
    return [val if val is not None else test]


def _grid_fits(options: FusionOptions, stack: StreamStack,
               masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`grid` re-fitted subset by subset: the strategy itself (exact, as for loo rows)."""
    weights, nll = np.zeros(masks.shape), np.full(masks.shape[0], np.nan)
    for i, mask in enumerate(masks):
        names = [s for s, on in zip(stack.streams, mask) if on]
        single = replace(options, strategy="mean", crossfit=None)
        fitted = fit(single if len(names) == 1 else replace(options, crossfit=None),
                     stack.select(names))
        assert fitted.weights is not None  # grid and mean give weights
        weights[i, mask] = fitted.weights
        nll[i] = fitted.details.get("objective_nll", np.nan)
    return weights, nll


def refit_weights(result: FusionResult, val: StreamStack | None, test: StreamStack,
                  masks: np.ndarray) -> SubsetRefit:
    """Weights re-fitted on the tuning split for every subset in `masks` (B, S).

    `bayes` and `hier`: `search_subsets`; `grid`: the grid search per subset; `fixed`, `mean`
    fit nothing, so a subset's weights are the restriction; `stack` has no per-stream weights:
    equal weights (both as under the restricted policy).
    """
    options = result.options
    weights: list[np.ndarray] = []
    infos: list[dict[str, Any]] = []
    objective: np.ndarray | None = None
    nll: np.ndarray | None = None
    for (_, fitted), tuning in zip(result.fits(), _tuning_stacks(result, val, test)):
        if tuning is None or options.strategy in UNSEARCHED:
            weights.append(fitted.subset_weights(masks))
            infos.append({"search": f"none: {UNSEARCHED.get(options.strategy, 'nothing fitted')}"})
            continue
        if options.strategy in SEARCHED:
            starts = [masks.astype(np.float64), fitted.subset_weights(masks)]
            recipe = _recipe_start(options, test.streams, masks)
            if recipe is not None:
                starts.insert(1, recipe)
            found = search_subsets(tuning, masks, starts, options.bounds)
            chosen, hits, tie_nll, info = found.weights, found.hits, found.nll, found.info
        else:
            tic = time.perf_counter()
            chosen, tie_nll = _grid_fits(options, tuning, masks)
            hits = HitEngine(tuning.scores, tuning.labels, ks=(1,)).hit_counts(chosen)
            info = {"search": "grid search per subset (the strategy itself)",
                    "seconds": round(time.perf_counter() - tic, 2)}
        weights.append(chosen)
        infos.append({"tuned_on": tuning.split if result.folds is None else "other folds",
                      **info})
        if result.folds is None:
            objective, nll = hits / tuning.n, tie_nll
    summary = infos[0] if len(infos) == 1 else {"folds": infos}
    return SubsetRefit(weights, objective, nll, summary)
