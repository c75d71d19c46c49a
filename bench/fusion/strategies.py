"""Fusion strategies and the fit-on-val protocol (docs/evaluation.md#fusion-protocol).

A strategy is *fitted* on one split's aligned stream scores (`StreamStack`) and *applied* to
another's. Only `fit` reads labels, and only of the stack it is given: `fit_protocol` hands it the
val stack, never the test one, unless the caller explicitly allowed test tuning (upstream-protocol
reproductions, marked †) or asked for k-fold cross-fitting on test (each fold's weights come from
the other folds' labels only).

Every strategy except `stack` ends as one non-negative weight per stream, so the fused score is
F = Σ w_s X_s / Σ w_s (docs/evaluation.md#score-spaces) and ablations can restrict the weights to
a subset of streams (`FittedFusion.subset_weights`).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import numpy as np

from slrbench.errors import MAX_SEED, MAX_TRIALS, SlrbenchError, check_range
from slrbench.fusion.engine import FUSED_KIND, SPACES, HitEngine, check_weights, fused_scores
from slrbench.methods.base import FusionRecipe

STRATEGIES = ("fixed", "mean", "grid", "bayes", "hier", "stack")
FITTED = frozenset({"grid", "bayes", "hier", "stack"})  # strategies that read labels
LEVEL_SEARCHES = ("bayes", "grid")
DEFAULT_TRIALS = 200
# Fusion weights are relative; a grid beyond this is a typo, not a search.
MAX_WEIGHT = 1e6
# Which strategies read each option of `slrbench fuse` (for the "ignored option" error).
_USERS = {
    "--trials": "--strategy bayes, or hier with --level-search bayes",
    "--grid": "--strategy grid, or hier with --level-search grid",
    "--level-search": "--strategy hier",
    "--seed": "--strategy bayes, hier (bayes levels) or stack, or with --crossfit",
    "--groups": "--strategy hier, or fixed weights (--weights)",
}
DEFAULT_BOUNDS = (0.0, 2.0)
OBJECTIVE = "pi@1 on the tuning split; ties: lower NLL of the fused scores"
# Grid values per modality suffix: DSTA-SLR's published grids (docs/methods/dsta.md#default-fusion);
# other streams get 0 … 1.2 in steps of 0.2.
PUBLISHED_GRIDS: dict[str, tuple[float, float, int]] = {
    "j": (1.0, 2.0, 11), "b": (0.5, 1.5, 11), "jm": (0.1, 1.0, 10), "bm": (0.1, 1.0, 10),
}
DEFAULT_GRID = (0.0, 1.2, 7)
MAX_GRID = 200_000  # weight vectors one grid search may evaluate
MAX_TIES = 512  # tied candidates whose NLL is computed to break a tie
MAX_STACK_PARAMS = 5_000_000  # K x (S·K) logistic-regression coefficients
STACK_CS = (0.01, 0.1, 1.0, 10.0)


# ----------------------------------------------------------------------------------- inputs


@dataclass
class StreamStack:
    """One split's per-stream scores aligned by sample id, in one score space."""

    streams: tuple[str, ...]
    scores: np.ndarray  # (S, N, K) float32
    labels: np.ndarray  # (N,) int64
    sample_ids: np.ndarray  # (N,) unicode
    space: str
    split: str

    @property
    def n(self) -> int:
        return int(self.scores.shape[1])

    def select(self, streams: Sequence[str]) -> StreamStack:
        """The same samples restricted to `streams` (in that order)."""
        index = [self.streams.index(s) for s in streams]
        return replace(self, streams=tuple(streams), scores=self.scores[index])

    def take(self, rows: np.ndarray) -> StreamStack:
        """The samples at `rows` (used by cross-fitting)."""
        return replace(self, scores=self.scores[:, rows], labels=self.labels[rows],
                       sample_ids=self.sample_ids[rows])


@dataclass(frozen=True)
class FusionOptions:
    """What to fit and how; everything here is recorded in the fused record's config."""

    strategy: str
    space: str = "logits"
    seed: int = 0
    trials: int = DEFAULT_TRIALS
    bounds: tuple[float, float] = DEFAULT_BOUNDS
    grid: Mapping[str, Sequence[float]] | None = None  # stream or "*" -> values (default: per
    # modality suffix, PUBLISHED_GRIDS)
    groups: Mapping[str, Sequence[str]] | None = None  # hier: group -> streams
    level_search: str = "bayes"  # hier: search used at each level
    recipe: FusionRecipe | None = None
    dataset: str = "default"
    allow_test_tuning: bool = False
    crossfit: int | None = None

    def check(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SlrbenchError(f"--strategy: found {self.strategy!r}; expected one of "
                                f"{', '.join(STRATEGIES)}")
        if self.space not in SPACES:
            raise SlrbenchError(f"--space: found {self.space!r}; expected one of "
                                f"{', '.join(SPACES)}")
        check_range("--trials", self.trials, 1, MAX_TRIALS)
        check_range("--seed", self.seed, 0, MAX_SEED)
        low, high = self.bounds
        if not 0 <= low < high:
            raise SlrbenchError(f"bounds: found {self.bounds}; expected 0 <= low < high")
        if self.level_search not in LEVEL_SEARCHES:
            raise SlrbenchError(f"--level-search: found {self.level_search!r}; expected one of "
                                f"{', '.join(LEVEL_SEARCHES)}")
        if self.crossfit is not None and self.crossfit < 2:
            raise SlrbenchError(f"--crossfit: found {self.crossfit}; expected K >= 2 folds")
        if self.crossfit is not None and self.allow_test_tuning:
            raise SlrbenchError("--crossfit with --allow-test-tuning: found both; expected one "
                                "(cross-fitting never tunes on the samples it scores)")
        for stream, values in (self.grid or {}).items():
            bad = [v for v in values if not (math.isfinite(v) and 0 <= v <= MAX_WEIGHT)]
            if bad:
                raise SlrbenchError(
                    f"--grid: weight {bad[0]} for {'every stream' if stream == '*' else stream!r}; "
                    f"expected finite weights from 0 to {MAX_WEIGHT:g}")
        if self.strategy == "fixed" and self.recipe is None:
            raise SlrbenchError("--strategy fixed: the method has no fusion recipe; expected a "
                                "method with published weights (or use mean, grid, bayes)")

    def uses(self, option: str) -> bool:
        """Whether this strategy reads `option` (a name of the `slrbench fuse` command)."""
        searching = self.strategy == "bayes" or (self.strategy == "hier"
                                                  and self.level_search == "bayes")
        return {
            "--trials": searching,
            "--grid": self.strategy == "grid" or (self.strategy == "hier"
                                                   and self.level_search == "grid"),
            "--level-search": self.strategy == "hier",
            "--seed": searching or self.strategy == "stack" or self.crossfit is not None,
            "--groups": self.strategy in ("hier", "fixed"),
        }.get(option, True)

    def check_given(self, given: Sequence[str]) -> None:
        """Refuse options the user typed that this strategy would silently ignore."""
        ignored = [option for option in given if not self.uses(option)]
        if ignored:
            raise SlrbenchError(
                f"{ignored[0]}: given, but --strategy {self.strategy}"
                + (f" with --level-search {self.level_search}" if self.strategy == "hier" else "")
                + f" ignores it; expected it only with {_USERS[ignored[0]]}")

    def check_grid_streams(self, streams: Sequence[str]) -> None:
        """Every stream named in --grid is one being fused."""
        unknown = sorted(set(self.grid or {}) - {"*"} - set(streams))
        if unknown:
            raise SlrbenchError(f"--grid: stream {unknown[0]!r} is not among the fused streams; "
                                f"expected one of {', '.join(streams)}")

    def to_config(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy, "space": self.space, "seed": self.seed,
            "trials": self.trials if self.strategy in ("bayes", "hier") else None,
            "bounds": list(self.bounds) if self.strategy in ("bayes", "hier") else None,
            "grid": {k: list(v) for k, v in self.grid.items()} if self.grid else None,
            "groups": {k: list(v) for k, v in self.groups.items()} if self.groups else None,
            "level_search": self.level_search if self.strategy == "hier" else None,
            "recipe_source": self.recipe.source if self.recipe else None,
            "dataset": self.dataset, "allow_test_tuning": self.allow_test_tuning,
            "crossfit": self.crossfit,
        }


# ----------------------------------------------------------------------------------- fitted


@dataclass
class FittedFusion:
    """A fitted strategy: flat per-stream weights (None for `stack`) plus what the fit found."""

    strategy: str
    streams: tuple[str, ...]
    space: str
    weights: np.ndarray | None
    details: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] | None = None  # hier: restrict subsets group-wise
    model: Any = None  # stack: (scaler, logistic regression, classes)

    @property
    def score_kind(self) -> str:
        return "logits" if self.strategy == "stack" else FUSED_KIND[self.space]

    def weight_table(self) -> dict[str, float] | None:
        if self.weights is None:
            return None
        return {s: float(w) for s, w in zip(self.streams, self.weights)}

    def apply(self, stack: StreamStack) -> np.ndarray:
        """Fused scores (N, K) float32 of `stack` (reads scores only, never labels)."""
        if stack.streams != self.streams:
            raise SlrbenchError(f"fusion inputs: found streams {list(stack.streams)}; expected "
                                f"{list(self.streams)} as fitted")
        if self.model is None:
            assert self.weights is not None  # only `stack` has no weights, and it has a model
            return fused_scores(stack.scores, self.weights)
        return _stack_apply(self.model, stack.scores)

    def subset_weights(self, masks: np.ndarray) -> np.ndarray:
        """Weights (B, S) of the stream subsets in bool `masks` (B, S).

        The fitted weights restricted to the subset (renormalised by the fused-score
        normalisation); `hier` restricts within each group, so a group keeps its level-2
        weight while it has members. `stack` has no per-stream weights and so do subsets whose
        fitted weights are all zero: they get equal weights.
        """
        masks = np.asarray(masks, dtype=bool)
        if self.weights is None:
            return masks.astype(np.float64)
        if self.groups is None:
            out = masks * self.weights[None, :]
        else:
            out = np.zeros(masks.shape)
            level2 = self.details["level_weights"]
            for group, members in self.groups.items():
                cols = [self.streams.index(s) for s in members]
                inner = np.asarray(self.details["group_weights"][group])
                sub = masks[:, cols] * inner[None, :]
                total = sub.sum(axis=1, keepdims=True)
                out[:, cols] = np.divide(sub, total, out=np.zeros_like(sub),
                                         where=total > 0) * level2[group]
        dead = out.sum(axis=1) <= 0
        out[dead] = masks[dead]
        return out


# ------------------------------------------------------------------------------- strategies


def fit(options: FusionOptions, stack: StreamStack) -> FittedFusion:
    """Fit `options.strategy` on `stack`; grid, bayes, hier and stack read its labels."""
    options.check()
    fitters = {"mean": _fit_mean, "fixed": _fit_fixed, "grid": _fit_grid, "bayes": _fit_bayes,
               "hier": _fit_hier, "stack": _fit_stack}
    return fitters[options.strategy](options, stack)


def _fit_mean(options: FusionOptions, stack: StreamStack) -> FittedFusion:
    return FittedFusion("mean", stack.streams, stack.space, np.ones(len(stack.streams)),
                        {"weights_source": "equal weights"})


def _fit_fixed(options: FusionOptions, stack: StreamStack) -> FittedFusion:
    recipe = options.recipe
    assert recipe is not None  # checked by FusionOptions.check
    table = recipe.weights_for(options.dataset)
    missing = [s for s in stack.streams if s not in table]
    if missing:
        raise SlrbenchError(
            f"--strategy fixed: no published weight for stream(s) {missing}; expected streams "
            f"among {sorted(k for k in table if k not in (recipe.groups or {}))}")
    weights = np.array([float(table[s]) for s in stack.streams])
    details: dict[str, Any] = {
        "weights_source": recipe.source,
        "published_for": options.dataset if options.dataset in recipe.weights else "default",
    }
    groups = resolve_groups(options, stack.streams) if recipe.groups else None
    if groups:
        # Level 1: published weights within each group; level 2: the group's own entry in
        # the table if the recipe has one, otherwise equal (docs/methods/lgf.md#default-fusion).
        group_weights = {g: [table[s] for s in members] for g, members in groups.items()}
        level = {g: float(table.get(g, 1.0)) for g in groups}
        details.update(group_weights=group_weights, level_weights=level)
        weights = _flatten_levels(stack.streams, groups, group_weights, level)
    check_weights(weights, len(stack.streams), "published weights")
    return FittedFusion("fixed", stack.streams, stack.space, weights, details, groups)


def _grid_values(options: FusionOptions, streams: Sequence[str]) -> list[np.ndarray]:
    values = []
    for stream in streams:
        given = (options.grid or {}).get(stream, (options.grid or {}).get("*"))
        if given is not None:
            values.append(np.asarray(given, dtype=np.float64))
            continue
        low, high, steps = PUBLISHED_GRIDS.get(_modality(stream), DEFAULT_GRID)
        values.append(np.round(np.linspace(low, high, steps), 6))
    return values


def _modality(stream: str) -> str:
    """`body_jm` / `left.jm` / `jm` -> `jm`."""
    return re.split(r"[_.]", stream)[-1]


def _search_grid(options: FusionOptions, stack: StreamStack,
                 engine: HitEngine) -> tuple[np.ndarray, dict[str, Any]]:
    values = _grid_values(options, stack.streams)
    size = int(np.prod([v.size for v in values], dtype=np.float64))
    if size > MAX_GRID:
        raise SlrbenchError(
            f"--strategy grid: found {size:,} weight combinations for {len(values)} streams; "
            f"expected at most {MAX_GRID:,} (use bayes or hier for many streams)")
    grid = np.array(list(itertools.product(*values)), dtype=np.float64)
    grid = grid[grid.sum(axis=1) > 0]
    best, info = _best_of(engine, grid, stack.space)
    info.update(search_space={s: [float(x) for x in v] for s, v in zip(stack.streams, values)},
                n_candidates=int(grid.shape[0]), objective=OBJECTIVE)
    return grid[best], info


def _fit_grid(options: FusionOptions, stack: StreamStack) -> FittedFusion:
    engine = HitEngine(stack.scores, stack.labels, ks=(1,))
    weights, info = _search_grid(options, stack, engine)
    info["weights_source"] = f"grid search on {stack.split}"
    return FittedFusion("grid", stack.streams, stack.space, weights, info)


def _best_of(engine: HitEngine, weights: np.ndarray, space: str) -> tuple[int, dict[str, Any]]:
    """Index of the best weight vector: most top-1 hits, then the lowest NLL."""
    counts = engine.hit_counts(weights)
    tied = np.flatnonzero(counts == counts.max())
    chosen = int(tied[0])
    info: dict[str, Any] = {"objective_pi@1": float(counts.max() / engine.n),
                            "n_tied": int(tied.size)}
    if tied.size > 1:
        considered = tied[:MAX_TIES]
        nll = engine.nll(weights[considered], space)
        chosen = int(considered[int(np.argmin(nll))])
        info["objective_nll"] = float(nll.min())
        info["ties_considered"] = int(considered.size)
    return chosen, info


def _search_bayes(options: FusionOptions, stack: StreamStack, engine: HitEngine,
                  enqueue: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, dict[str, Any]]:
    import optuna

    low, high = options.bounds
    names = [f"w_{i}" for i in range(len(stack.streams))]
    space: dict[str, optuna.distributions.BaseDistribution] = {
        n: optuna.distributions.FloatDistribution(low, high) for n in names
    }
    sampler = optuna.samplers.TPESampler(seed=options.seed)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # enqueue_trial is marked experimental in some versions
        for start in enqueue:
            study.enqueue_trial({n: float(np.clip(v, low, high)) for n, v in zip(names, start)})
    tried = np.zeros((options.trials, len(names)))
    for number in range(options.trials):
        trial = study.ask(space)
        tried[number] = [trial.params[n] for n in names]
        if tried[number].sum() <= 0:
            study.tell(trial, -1.0)  # no stream weighted: not a fusion
            continue
        study.tell(trial, float(engine.hit_counts(tried[number])[0]) / engine.n)
    usable = np.flatnonzero(tried.sum(axis=1) > 0)
    best, info = _best_of(engine, tried[usable], stack.space)
    info.update(
        search_space={s: [low, high] for s in stack.streams}, n_trials=options.trials,
        sampler="optuna TPESampler", sampler_seed=options.seed, best_trial=int(usable[best]),
        enqueued=len(enqueue), objective=OBJECTIVE,
        library={"optuna": metadata.version("optuna")},
    )
    return tried[usable[best]], info


def _fit_bayes(options: FusionOptions, stack: StreamStack) -> FittedFusion:
    engine = HitEngine(stack.scores, stack.labels, ks=(1,))
    weights, info = _search_bayes(options, stack, engine, _starts(options, stack.streams))
    info["weights_source"] = f"Bayesian optimisation on {stack.split}"
    return FittedFusion("bayes", stack.streams, stack.space, weights, info)


def _starts(options: FusionOptions, streams: Sequence[str]) -> list[np.ndarray]:
    """Equal weights, then the recipe's weights if it has all streams: the search starts from
    the obvious candidates, so it never ends below them on the tuning split."""
    starts = [np.ones(len(streams))]
    if options.recipe is not None:
        table = options.recipe.weights_for(options.dataset)
        if all(s in table for s in streams):
            starts.append(np.array([float(table[s]) for s in streams]))
    return starts


# hier's leave-one-out rows refit every level, but removing one stream changes only its own
# group and the top level: the other groups' searches have the same inputs and a seeded
# sampler, so their result is looked up instead of searched again (the same numbers).
_LEVEL_CACHE: OrderedDict[str, tuple[np.ndarray, dict[str, Any]]] = OrderedDict()
_LEVEL_CACHE_SIZE = 64


def _level_key(options: FusionOptions, stack: StreamStack, starts: list[np.ndarray]) -> str:
    """Everything a level search reads: settings, streams, scores, labels and start points."""
    grid = ([v.tolist() for v in _grid_values(options, stack.streams)]
            if options.level_search == "grid" else None)
    settings = [options.level_search, options.trials, options.seed, list(options.bounds),
                list(stack.streams), stack.space, grid, [s.tolist() for s in starts]]
    digest = hashlib.sha256(json.dumps(settings).encode())
    for array in (stack.scores, stack.labels):
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _search(options: FusionOptions, stack: StreamStack) -> tuple[np.ndarray, dict[str, Any]]:
    """One level of `hier`: the configured search over `stack`'s streams."""
    if len(stack.streams) == 1:
        return np.ones(1), {"search": "single stream"}
    starts = _starts(options, stack.streams)
    key = _level_key(options, stack, starts)
    if key not in _LEVEL_CACHE:
        engine = HitEngine(stack.scores, stack.labels, ks=(1,))
        if options.level_search == "grid":
            _LEVEL_CACHE[key] = _search_grid(options, stack, engine)
        else:
            _LEVEL_CACHE[key] = _search_bayes(options, stack, engine, starts)
        while len(_LEVEL_CACHE) > _LEVEL_CACHE_SIZE:
            _LEVEL_CACHE.popitem(last=False)
    _LEVEL_CACHE.move_to_end(key)
    weights, info = _LEVEL_CACHE[key]
    return weights.copy(), copy.deepcopy(info)


def _fit_hier(options: FusionOptions, stack: StreamStack) -> FittedFusion:
    groups = resolve_groups(options, stack.streams)
    levels: list[dict[str, Any]] = []
    group_weights: dict[str, list[float]] = {}
    group_scores = []
    for group, members in groups.items():
        sub = stack.select(members)
        weights, info = _search(options, sub)
        group_weights[group] = [float(w) for w in weights]
        group_scores.append(fused_scores(sub.scores, weights))
        levels.append({"level": 1, "group": group, "streams": list(members),
                       "weights": dict(zip(members, group_weights[group])), **info})
    # Level 2 fuses the normalised level-1 scores (docs/evaluation.md#hierarchical-fusion).
    top = StreamStack(tuple(groups), np.stack(group_scores), stack.labels, stack.sample_ids,
                      stack.space, stack.split)
    level_options = replace(options, recipe=None, grid=None)
    weights, info = _search(level_options, top)
    level = {g: float(w) for g, w in zip(groups, weights)}
    levels.append({"level": 2, "groups": list(groups), "weights": level, **info})
    flat = _flatten_levels(stack.streams, groups, group_weights, level)
    details = {"levels": levels, "group_weights": group_weights, "level_weights": level,
               "weights_source": f"two-level {options.level_search} search on {stack.split}",
               "objective": OBJECTIVE}
    return FittedFusion("hier", stack.streams, stack.space, flat, details, groups)


def _flatten_levels(streams: Sequence[str], groups: Mapping[str, Sequence[str]],
                    group_weights: Mapping[str, Sequence[float]],
                    level: Mapping[str, float]) -> np.ndarray:
    """Per-stream weights of a two-level fusion: Σ_g v_g (Σ_s w_s X_s / Σ_s w_s) / Σ_g v_g is
    linear in the streams, with weight v_g w_s / Σ_{s in g} w_s."""
    flat = np.zeros(len(streams))
    for group, members in groups.items():
        inner = np.asarray(group_weights[group], dtype=np.float64)
        if inner.sum() <= 0:
            continue
        for stream, w in zip(members, inner / inner.sum()):
            flat[streams.index(stream)] = level[group] * w
    return flat


def _present_groups(groups: Mapping[str, Sequence[str]],
                    streams: Sequence[str]) -> dict[str, tuple[str, ...]]:
    present = {g: tuple(s for s in members if s in streams) for g, members in groups.items()}
    return {g: members for g, members in present.items() if members}


def resolve_groups(options: FusionOptions, streams: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Stream groups for `hier`: given, from the recipe, or from stream prefixes
    (`body_j` -> `body`, `left.j` -> `left`). Every stream must be in exactly one group."""
    source = options.groups or (options.recipe.groups if options.recipe else None)
    if source:
        groups = _present_groups(source, streams)
    else:
        found: dict[str, list[str]] = {}
        for stream in streams:
            parts = re.split(r"[_.]", stream, maxsplit=1)
            found.setdefault(parts[0] if len(parts) == 2 else "", []).append(stream)
        groups = {g: tuple(m) for g, m in found.items()}
        if "" in groups or len(groups) < 2:
            raise SlrbenchError(
                f"--strategy hier: found no stream groups for streams {list(streams)}; expected "
                "a method recipe with groups or part-qualified streams like body_j, lhand_j")
    placed = [s for members in groups.values() for s in members]
    if sorted(placed) != sorted(streams):
        stray = sorted(set(streams) - set(placed))
        twice = sorted({s for s in placed if placed.count(s) > 1})
        raise SlrbenchError(f"--strategy hier: stream(s) {stray} in no group, {twice} in "
                            "several; expected every fused stream in exactly one group")
    return groups


def _fit_stack(options: FusionOptions, stack: StreamStack) -> FittedFusion:
    from sklearn.model_selection import KFold, StratifiedKFold

    s_count, n, k = stack.scores.shape
    classes, counts = np.unique(stack.labels, return_counts=True)
    if classes.size * s_count * k > MAX_STACK_PARAMS:
        raise SlrbenchError(
            f"--strategy stack: found {classes.size * s_count * k:,} coefficients "
            f"({classes.size} classes x {s_count} streams x {k} scores); expected at most "
            f"{MAX_STACK_PARAMS:,} (use bayes or hier for large vocabularies)")
    if classes.size < 2:
        raise SlrbenchError(f"--strategy stack: found {classes.size} class in the "
                            f"{stack.split} labels; expected at least 2")
    features = _stack_features(stack.scores)
    folds = min(3, int(counts.min()))
    # Internal cross-validation picks the regularisation C (docs/evaluation.md#strategies).
    cv_scores: dict[float, float] = {}
    if folds >= 2:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=options.seed)
        splits = list(splitter.split(features, stack.labels))
    elif n >= 4:
        splits = list(KFold(min(3, n // 2), shuffle=True, random_state=options.seed)
                      .split(features))
    else:
        splits = []
    for c in STACK_CS if splits else ():
        right = 0
        for train, held in splits:
            scaler, lr = _stack_model(c, features[train], stack.labels[train])
            predicted = lr.predict(scaler.transform(features[held]))
            right += int((predicted == stack.labels[held]).sum())
        cv_scores[c] = right / n
    # Best held-out accuracy; ties go to the stronger regularisation.
    chosen = max(cv_scores, key=lambda c: (cv_scores[c], -c)) if cv_scores else 1.0
    scaler, lr = _stack_model(chosen, features, stack.labels)
    details = {
        "weights_source": f"stacked logistic regression fitted on {stack.split}",
        "model": "sklearn LogisticRegression (multinomial, lbfgs) on standardised "
                 "concatenated stream scores",
        "C": chosen, "cv_folds": len(splits), "cv_pi@1": {str(c): v for c, v in
                                                          cv_scores.items()},
        "classes_fitted": int(classes.size),
        "library": {"scikit-learn": metadata.version("scikit-learn")},
    }
    return FittedFusion("stack", stack.streams, stack.space, None, details,
                        model=(scaler, lr, k))


def _stack_features(scores: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(scores.transpose(1, 0, 2)).reshape(scores.shape[1], -1)


def _stack_model(c: float, features: np.ndarray, labels: np.ndarray) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    model = LogisticRegression(C=c, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on tiny folds
        model.fit(scaler.transform(features), labels)
    return scaler, model


def _stack_apply(model: tuple[Any, Any, int], scores: np.ndarray) -> np.ndarray:
    """Decision scores (N, K) in registry class order; classes never seen while fitting sit
    below every fitted class (they cannot be predicted)."""
    scaler, lr, k = model
    decision = lr.decision_function(scaler.transform(_stack_features(scores)))
    if decision.ndim == 1:  # binary: sklearn returns one margin for classes_[1]
        decision = np.stack([-decision / 2, decision / 2], axis=1)
    out = np.empty((scores.shape[1], k), dtype=np.float64)
    out[:] = (decision.min(axis=1) - 1.0)[:, None]
    out[:, lr.classes_] = decision
    return out.astype(np.float32)


# --------------------------------------------------------------------------------- protocol


@dataclass
class FusionResult:
    """Fitted fusion plus fused val / test scores and the protocol facts for the records."""

    options: FusionOptions
    streams: tuple[str, ...]
    tuned_on: str | None  # "val", "test", "test-crossfit-signer" / "-sample", or None
    fitted: FittedFusion | None  # None when cross-fitted
    folds: list[tuple[np.ndarray, FittedFusion]] | None
    val_fused: np.ndarray | None
    test_fused: np.ndarray
    score_kind: str
    crossfit: dict[str, Any] | None = None  # k, seed, folds_by

    @property
    def fold_of(self) -> np.ndarray | None:
        if self.folds is None:
            return None
        out = np.empty(self.test_fused.shape[0], dtype=np.int64)
        for fold, (rows, _) in enumerate(self.folds):
            out[rows] = fold
        return out

    def fits(self) -> list[tuple[np.ndarray | None, FittedFusion]]:
        """(test rows or None for all, fitted) pairs: one, or one per cross-fitting fold."""
        if self.folds is not None:
            return [(rows, fitted) for rows, fitted in self.folds]
        assert self.fitted is not None
        return [(None, self.fitted)]


def refusal(strategy: str, what: str) -> SlrbenchError:
    return SlrbenchError(
        f"fuse --strategy {strategy}: no val records for {what}; expected val records to fit "
        "weights on (or --crossfit K to cross-fit on test, or --allow-test-tuning to reproduce "
        "a test-tuned upstream protocol, marked †)")


def fit_protocol(options: FusionOptions, val: StreamStack | None, test: StreamStack,
                 test_signers: np.ndarray | None = None) -> FusionResult:
    """Fit on val and apply to val and test. Without val: refuse if the strategy reads labels,
    unless cross-fitting (`options.crossfit`) or test tuning (`allow_test_tuning`) was asked.
    ``test_signers``: the signer of each test row where the dataset knows it; cross-fitting
    then holds out whole signers."""
    options.check()
    if val is not None and val.streams != test.streams:
        raise SlrbenchError(f"fusion inputs: val streams {list(val.streams)} differ from test "
                            f"streams {list(test.streams)}; expected the same streams")
    needs_labels = options.strategy in FITTED
    if options.crossfit is not None:
        if val is not None:
            raise SlrbenchError(
                f"--crossfit {options.crossfit}: found val records; expected --crossfit only "
                "for datasets without a val split (weights are fitted on val)")
        if not needs_labels:
            raise SlrbenchError(f"--crossfit with --strategy {options.strategy}: nothing is "
                                "fitted; expected grid, bayes, hier or stack")
        return _crossfit(options, test, test_signers)
    if needs_labels and val is None and not options.allow_test_tuning:
        raise refusal(options.strategy, f"streams {', '.join(test.streams)}")
    tuning = val if val is not None else test
    fitted = fit(options, tuning)
    tuned_on = tuning.split if needs_labels else None
    return FusionResult(options, test.streams, tuned_on, fitted, None,
                        None if val is None else fitted.apply(val), fitted.apply(test),
                        fitted.score_kind)


def crossfit_folds(n: int, k: int, seed: int,
                   signers: np.ndarray | None = None) -> tuple[list[np.ndarray], str]:
    """Held-out rows of each fold and how they were formed: whole signers per fold where the
    signers are known (a signer's other samples would otherwise leak their style into the
    weights that score them), else shuffled samples; never by class. Seeded."""
    from sklearn.model_selection import GroupKFold, KFold

    if signers is not None:
        groups = np.unique(signers).size
        if k > groups:
            raise SlrbenchError(f"--crossfit: found K={k} folds for {groups} test signers; "
                                f"expected K <= {groups} (folds hold out whole signers)")
        splitter = GroupKFold(k, shuffle=True, random_state=seed)
        return [held for _, held in splitter.split(np.zeros(n), groups=signers)], "signer"
    if k > n:
        raise SlrbenchError(f"--crossfit: found K={k} folds for {n} test samples; "
                            "expected K <= samples")
    return [held for _, held in KFold(k, shuffle=True, random_state=seed).split(np.zeros(n))], \
        "sample"


def _crossfit(options: FusionOptions, test: StreamStack,
              signers: np.ndarray | None) -> FusionResult:
    k = options.crossfit or 2
    held_out, folds_by = crossfit_folds(test.n, k, options.seed, signers)
    fused = np.empty(test.scores.shape[1:], dtype=np.float32)
    folds = []
    for rows in held_out:
        train = np.setdiff1d(np.arange(test.n), rows)
        fitted = fit(options, test.take(train))  # labels of the other folds only
        fused[rows] = fitted.apply(_scores_only(test, rows))
        folds.append((rows, fitted))
    return FusionResult(options, test.streams, f"test-crossfit-{folds_by}", None, folds, None,
                        fused, folds[0][1].score_kind,
                        {"k": k, "seed": options.seed, "folds_by": folds_by})


def _scores_only(stack: StreamStack, rows: np.ndarray) -> StreamStack:
    """The held-out rows' scores with their labels withheld (applying never reads labels)."""
    return StreamStack(stack.streams, stack.scores[:, rows], np.full(rows.size, -1),
                       stack.sample_ids[rows], stack.space, stack.split)
