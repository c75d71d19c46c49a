"""Recognition metrics, calibration, bootstrap intervals and paired comparisons.

Implements docs/evaluation.md#metrics and #uncertainty-and-comparisons. All values are
fractions in [0, 1]; reports multiply by 100.

Conventions
-----------
* Scores S (N, K) of any ``score_kind`` ("logits", "log_probs", "probs"); labels y (N,) in [0, K).
* Rank of the true class is pessimistic: r_i = |{c : S_ic >= S_iy}|, so ties count against the
  sample and constant scores give 0 % top-1 (upstream argmax/argsort would give >= 1/K).
  Ranks are read from the raw scores: every score kind is a monotone transform of the logits.
* ``pc@k`` averages per-class hit rates over the classes present in the ground truth
  (``classes_present``); ``pc_union@1`` is the mmaction2/pyskl ``mean_class_accuracy``: classes in
  the union of argmax predictions and labels, classes without ground truth scoring 0. It uses
  upstream argmax predictions (lowest index wins a tie), so on exact ties it can exceed ``pc@1``.
* Top-k metrics exist only for k <= K: ``evaluate`` omits ``pi@k``/``pc@k`` and
  ``per_class["hits@k"]`` when k > K (e.g. ``pi@5`` for a 3-class problem); the public top-k
  functions raise instead. ``chance@5`` is min(5, K)/K.
* NLL clips p(y) at ``PROB_EPS`` for every score kind, so logits, log-softmax and softmax of the
  same scores give the same value. ECE uses equal-width bins (lo, hi] over max probability.
* Bootstrap (docs/evaluation.md#bootstrap-intervals): B instance resamples with replacement from a
  recorded seed; every metric is computed on the same resamples; P-C uses the classes present in
  each resample; 95 % percentile interval. Resample b is row b of
  ``np.random.default_rng(seed).integers(0, N, size=(B, N))``; rows are drawn in chunks, which does
  not change the stream, so results depend only on (N, B, seed) and two records with the same N and
  seed get the same resamples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse, stats

from slrbench.errors import SlrbenchError

METRIC_DEFINITIONS_VERSION = "1"

METRIC_KEYS = ("pi@1", "pi@5", "pc@1", "pc@5", "pc_union@1", "nll", "ece")
METRIC_LABELS: dict[str, str] = {
    "pi@1": "P-I@1",
    "pi@5": "P-I@5",
    "pc@1": "P-C@1",
    "pc@5": "P-C@5",
    "pc_union@1": "pc_union@1",
    "nll": "NLL",
    "ece": "ECE",
}
SCORE_KINDS = ("logits", "log_probs", "probs")
CHANCE_KEYS = ("chance@1", "chance@5")

# Probabilities are clipped here before the log (sklearn's historical log_loss default).
PROB_EPS = 1e-15
# "probs" rows must sum to 1 (and "log_probs" rows log-sum-exp to 0) within this: catches
# logits mislabelled as probabilities without rejecting float32 rounding.
_SIMPLEX_TOL = 1e-3
# Elements per block for row-chunked (N, K) work and per bootstrap chunk (N x resamples):
# bounds temporaries at ~32 MB whatever N is.
_BLOCK_ELEMENTS = 4_000_000


def metric_label(key: str) -> str:
    """Display label for a metric key, also for optional ones such as ``pi@10`` -> ``P-I@10``."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    for prefix, label in (("pi@", "P-I@"), ("pc@", "P-C@")):
        if key.startswith(prefix):
            return label + key[len(prefix):]
    return key


# --------------------------------------------------------------------------------------------
# Records of results


@dataclass(frozen=True)
class BootstrapConfig:
    """Bootstrap settings; stored with every metric so intervals can be reproduced."""

    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    method: str = "percentile"

    def __post_init__(self) -> None:
        _expect_int(self.resamples, "bootstrap.resamples", minimum=1)
        _expect_int(self.seed, "bootstrap.seed", minimum=0)
        conf = self.confidence
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 < conf < 1.0:
            raise SlrbenchError(
                f"bootstrap.confidence: found {conf!r}, expected a number strictly between 0 and 1"
            )
        if self.method != "percentile":
            raise SlrbenchError(
                f"bootstrap.method: found {self.method!r}, expected 'percentile'"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "resamples": int(self.resamples),
            "seed": int(self.seed),
            "confidence": float(self.confidence),
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BootstrapConfig:
        return cls(
            resamples=int(data.get("resamples", 1000)),
            seed=int(data.get("seed", 0)),
            confidence=float(data.get("confidence", 0.95)),
            method=str(data.get("method", "percentile")),
        )


@dataclass(frozen=True)
class MetricValue:
    """A point estimate with its bootstrap interval (None when no bootstrap was run)."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "value": float(self.value),
            "ci_low": None if self.ci_low is None else float(self.ci_low),
            "ci_high": None if self.ci_high is None else float(self.ci_high),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricValue:
        low, high = data.get("ci_low"), data.get("ci_high")
        return cls(
            value=float(data["value"]),
            ci_low=None if low is None else float(low),
            ci_high=None if high is None else float(high),
        )


@dataclass
class Evaluation:
    """Everything `evaluate` computes for one record (docs/evaluation.md#run-metadata)."""

    metrics: dict[str, MetricValue]
    chance: dict[str, float]
    n: int
    num_classes: int
    classes_present: int
    per_class: dict[str, np.ndarray]
    bootstrap: BootstrapConfig | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (plain floats, ints and lists)."""
        return {
            "metric_definitions_version": METRIC_DEFINITIONS_VERSION,
            "n": int(self.n),
            "num_classes": int(self.num_classes),
            "classes_present": int(self.classes_present),
            "metrics": {key: mv.to_dict() for key, mv in self.metrics.items()},
            "chance": {key: float(v) for key, v in self.chance.items()},
            "per_class": {key: [int(x) for x in v] for key, v in self.per_class.items()},
            "bootstrap": None if self.bootstrap is None else self.bootstrap.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        boot = data.get("bootstrap")
        return cls(
            metrics={k: MetricValue.from_dict(v) for k, v in data["metrics"].items()},
            chance={k: float(v) for k, v in data["chance"].items()},
            n=int(data["n"]),
            num_classes=int(data["num_classes"]),
            classes_present=int(data["classes_present"]),
            per_class={
                k: np.asarray(v, dtype=np.int64) for k, v in data.get("per_class", {}).items()
            },
            bootstrap=None if boot is None else BootstrapConfig.from_dict(boot),
        )


@dataclass
class PairedComparison:
    """Model A versus model B on the same samples (docs/evaluation.md#paired-comparisons); deltas
    are A − B."""

    n: int
    mcnemar_b: int  # A right, B wrong
    mcnemar_c: int  # A wrong, B right
    mcnemar_p: float
    delta: dict[str, MetricValue]  # "pi@1", "pc@1"
    p_value: dict[str, float]  # paired-bootstrap two-sided p per delta
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric_definitions_version": METRIC_DEFINITIONS_VERSION,
            "n": int(self.n),
            "mcnemar_b": int(self.mcnemar_b),
            "mcnemar_c": int(self.mcnemar_c),
            "mcnemar_p": float(self.mcnemar_p),
            "delta": {key: mv.to_dict() for key, mv in self.delta.items()},
            "p_value": {key: float(p) for key, p in self.p_value.items()},
            "bootstrap": self.bootstrap.to_dict(),
        }


# --------------------------------------------------------------------------------------------
# Validation at the boundary: one-line SlrbenchError naming field, found, expected.


def _expect_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SlrbenchError(f"{name}: found {value!r}, expected an integer >= {minimum}")


def _check_score_kind(score_kind: str, name: str = "score_kind") -> None:
    if score_kind not in SCORE_KINDS:
        raise SlrbenchError(f"{name}: found {score_kind!r}, expected one of {SCORE_KINDS}")


def _check_scores(
    scores: npt.ArrayLike, name: str = "scores", num_classes: int | None = None
) -> np.ndarray:
    """2-D, non-empty, real and finite; returns a float array (float32 stays float32)."""
    s = np.asarray(scores)
    if s.ndim != 2:
        raise SlrbenchError(f"{name}: found shape {s.shape}, expected a 2-D array (N, K)")
    if s.dtype == np.bool_ or not (
        np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)
    ):
        raise SlrbenchError(f"{name}: found dtype {s.dtype}, expected real numbers")
    if s.shape[0] == 0:
        raise SlrbenchError(f"{name}: found 0 rows, expected at least one sample")
    if s.shape[1] == 0:
        raise SlrbenchError(f"{name}: found 0 columns, expected at least one class")
    if num_classes is not None:
        _expect_int(num_classes, "num_classes", minimum=1)
        if s.shape[1] != num_classes:
            raise SlrbenchError(
                f"{name}: found {s.shape[1]} columns, expected num_classes={num_classes}"
            )
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    finite = np.isfinite(s)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise SlrbenchError(
            f"{name}: found {int((~finite).sum())} non-finite values (first {s[row, col]} at "
            f"row {row}, column {col}), expected finite scores"
        )
    return s


def _check_labels(labels: npt.ArrayLike, n: int | None, num_classes: int | None,
                  name: str = "labels") -> np.ndarray:
    """1-D integer class indices, length n, in [0, num_classes); returns int64."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise SlrbenchError(f"{name}: found shape {y.shape}, expected a 1-D array (N,)")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise SlrbenchError(f"{name}: found dtype {y.dtype}, expected integer class indices")
    if y.size == 0:
        raise SlrbenchError(f"{name}: found 0 entries, expected at least one sample")
    if n is not None and y.shape[0] != n:
        raise SlrbenchError(f"{name}: found {y.shape[0]} entries, expected {n} (one per score row)")
    upper = np.iinfo(np.int64).max if num_classes is None else num_classes
    bad = (y < 0) | (y >= upper)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        expected = "class indices >= 0" if num_classes is None else f"class indices in [0, {upper})"
        raise SlrbenchError(
            f"{name}: found {int(bad.sum())} values out of range (first {y[first]} at index "
            f"{first}), expected {expected}"
        )
    return y.astype(np.int64, copy=False)


def _check_hits(hits: npt.ArrayLike, name: str = "hits") -> np.ndarray:
    """1-D non-empty 0/1 vector; returns bool."""
    h = np.asarray(hits)
    if h.ndim != 1:
        raise SlrbenchError(f"{name}: found shape {h.shape}, expected a 1-D array (N,)")
    if h.size == 0:
        raise SlrbenchError(f"{name}: found 0 entries, expected at least one sample")
    if h.dtype != np.bool_:
        if not (np.issubdtype(h.dtype, np.integer) or np.issubdtype(h.dtype, np.floating)):
            raise SlrbenchError(f"{name}: found dtype {h.dtype}, expected booleans")
        if not np.isin(h, (0, 1)).all():
            raise SlrbenchError(f"{name}: found values other than 0/1, expected booleans")
        h = h.astype(bool)
    return h


def _check_k(k: int, num_classes: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SlrbenchError(f"k: found {k!r}, expected a positive integer")
    if k > num_classes:
        raise SlrbenchError(f"k: found {k}, expected k <= K = {num_classes}")


def _check_inputs(
    scores: npt.ArrayLike, labels: npt.ArrayLike, num_classes: int | None = None,
    name: str = "scores",
) -> tuple[np.ndarray, np.ndarray]:
    s = _check_scores(scores, name=name, num_classes=num_classes)
    y = _check_labels(labels, n=s.shape[0], num_classes=s.shape[1])
    return s, y


# --------------------------------------------------------------------------------------------
# Per-sample quantities (unchecked internals; callers validate first)


def _row_blocks(n: int, width: int) -> Iterator[slice]:
    """Row slices whose (rows x width) temporaries stay within _BLOCK_ELEMENTS."""
    step = max(1, _BLOCK_ELEMENTS // max(width, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _ranks(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pessimistic 1-based rank of the true class, row-chunked to bound the (N, K) mask."""
    ranks = np.empty(s.shape[0], dtype=np.int64)
    for rows in _row_blocks(*s.shape):
        block = s[rows]
        true = block[np.arange(block.shape[0]), y[rows]]
        ranks[rows] = np.count_nonzero(block >= true[:, None], axis=1)
    return ranks


def _log_prob_true_and_max(
    s: np.ndarray, y: np.ndarray, score_kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """log p(y) and log max_c p(c) per sample, float64; checks probs / log_probs are normalised."""
    n = s.shape[0]
    log_true = np.empty(n, dtype=np.float64)
    log_max = np.empty(n, dtype=np.float64)
    for rows in _row_blocks(*s.shape):
        block = s[rows].astype(np.float64, copy=False)
        true = block[np.arange(block.shape[0]), y[rows]]
        top = block.max(axis=1)
        if score_kind == "probs":
            _check_simplex(block, rows.start, "probs")
            # Tiny negatives from rounding become 0; log 0 = -inf is clipped by the caller.
            with np.errstate(divide="ignore"):
                log_true[rows] = np.log(np.clip(true, 0.0, None))
                log_max[rows] = np.log(np.clip(top, 0.0, None))
        else:
            # Stable log-sum-exp; for log_probs it is ~0 and serves as the normalisation check.
            lse = top + np.log(np.exp(block - top[:, None]).sum(axis=1))
            if score_kind == "log_probs":
                _check_log_simplex(lse, rows.start)
                log_true[rows], log_max[rows] = true, top
            else:
                log_true[rows], log_max[rows] = true - lse, top - lse
    return log_true, log_max


def _check_simplex(block: np.ndarray, offset: int, kind: str) -> None:
    sums = block.sum(axis=1)
    bad = (np.abs(sums - 1.0) > _SIMPLEX_TOL) | (block.min(axis=1) < -_SIMPLEX_TOL)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SlrbenchError(
            f"scores: found row {offset + row} with sum {sums[row]:.6g} and minimum "
            f"{block[row].min():.6g}, expected score_kind={kind!r} rows of non-negative "
            f"probabilities summing to 1"
        )


def _check_log_simplex(lse: np.ndarray, offset: int) -> None:
    bad = np.abs(lse) > _SIMPLEX_TOL
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SlrbenchError(
            f"scores: found row {offset + row} with log-sum-exp {lse[row]:.6g}, expected "
            f"score_kind='log_probs' rows whose exponentials sum to 1"
        )


def _nll_and_confidence(
    s: np.ndarray, y: np.ndarray, score_kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample −log p(y) (clipped at PROB_EPS) and confidence max_c p(c) in [0, 1]."""
    log_true, log_max = _log_prob_true_and_max(s, y, score_kind)
    nll = -np.maximum(log_true, np.log(PROB_EPS))
    conf = np.clip(np.exp(log_max), 0.0, 1.0)
    return nll, conf


def _ece_bins(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index per sample for equal-width bins (lo, hi]; confidence 0 joins the first bin."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], conf, side="left")


def _ece(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    # Σ_b (n_b/N)|acc_b − conf_b| = (1/N) Σ_b |Σ_{i∈b} (correct_i − conf_i)|
    gap = np.bincount(_ece_bins(conf, n_bins), weights=correct - conf, minlength=n_bins)
    return float(np.abs(gap).sum() / conf.shape[0])


# --------------------------------------------------------------------------------------------
# Public metric functions


def to_probabilities(scores: npt.ArrayLike, score_kind: str) -> np.ndarray:
    """Scores as float64 probabilities: softmax of logits, exp of log_probs, probs as given.

    probs / log_probs must already be normalised (within 1e-3), otherwise SlrbenchError: that is
    how logits mislabelled as probabilities are caught.
    """
    _check_score_kind(score_kind)
    s = _check_scores(scores)
    out = np.empty(s.shape, dtype=np.float64)
    for rows in _row_blocks(*s.shape):
        block = s[rows].astype(np.float64, copy=False)
        if score_kind == "probs":
            _check_simplex(block, rows.start, "probs")
            out[rows] = np.clip(block, 0.0, None)
            continue
        top = block.max(axis=1, keepdims=True)
        e = np.exp(block - top)
        if score_kind == "log_probs":
            _check_log_simplex(top[:, 0] + np.log(e.sum(axis=1)), rows.start)
            out[rows] = np.exp(block)
        else:
            out[rows] = e / e.sum(axis=1, keepdims=True)
    return out


def true_class_rank(scores: npt.ArrayLike, labels: npt.ArrayLike) -> np.ndarray:
    """Pessimistic 1-based rank r_i = |{c : S_ic >= S_iy}| (int64): ties count against y."""
    s, y = _check_inputs(scores, labels)
    return _ranks(s, y)


def topk_hits(scores: npt.ArrayLike, labels: npt.ArrayLike, k: int) -> np.ndarray:
    """hit@k_i = r_i <= k (bool); k must be in [1, K]."""
    s, y = _check_inputs(scores, labels)
    _check_k(k, s.shape[1])
    return _ranks(s, y) <= k


def per_instance_accuracy(hits: npt.ArrayLike) -> float:
    """P-I@k = mean of the hit vector."""
    return float(_check_hits(hits).mean())


def per_class_accuracy(
    hits: npt.ArrayLike, labels: npt.ArrayLike, num_classes: int
) -> tuple[float, int]:
    """P-C@k over classes with ground-truth samples; returns (value, classes_present)."""
    h = _check_hits(hits)
    _expect_int(num_classes, "num_classes", minimum=1)
    y = _check_labels(labels, n=h.shape[0], num_classes=num_classes)
    n_c = np.bincount(y, minlength=num_classes)
    hit_c = np.bincount(y, weights=h, minlength=num_classes)
    present = n_c > 0
    return float(np.mean(hit_c[present] / n_c[present])), int(present.sum())


def union_class_accuracy(pred: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """mmaction2/pyskl ``mean_class_accuracy`` from top-1 predictions (e.g. argmax).

    Confusion over the union of predicted and true labels; union classes without ground-truth
    samples score 0 and are averaged in. Pass ``np.argmax(scores, 1)`` to match upstream, which
    breaks ties towards the lowest class index.
    """
    p = _check_labels(pred, n=None, num_classes=None, name="pred")
    y = _check_labels(labels, n=p.shape[0], num_classes=None)
    size = int(max(p.max(), y.max())) + 1
    n_c = np.bincount(y, minlength=size)
    hit_c = np.bincount(y, weights=p == y, minlength=size)
    in_union = (n_c > 0) | (np.bincount(p, minlength=size) > 0)
    present = n_c > 0
    return float((hit_c[present] / n_c[present]).sum() / in_union.sum())


def negative_log_likelihood(
    scores: npt.ArrayLike, labels: npt.ArrayLike, score_kind: str = "logits"
) -> float:
    """Mean −log p(y): softmax of logits, exp of log_probs, probs as given; p clipped at 1e-15."""
    _check_score_kind(score_kind)
    s, y = _check_inputs(scores, labels)
    nll, _ = _nll_and_confidence(s, y, score_kind)
    return float(nll.mean())


def expected_calibration_error(
    scores: npt.ArrayLike, labels: npt.ArrayLike, score_kind: str = "logits", n_bins: int = 15
) -> float:
    """ECE over max probability, equal-width bins (lo, hi]; accuracy = pessimistic top-1 hit."""
    _check_score_kind(score_kind)
    _expect_int(n_bins, "n_bins", minimum=1)
    s, y = _check_inputs(scores, labels)
    _, conf = _nll_and_confidence(s, y, score_kind)
    return _ece(conf, (_ranks(s, y) == 1).astype(np.float64), n_bins)


# --------------------------------------------------------------------------------------------
# Bootstrap engine
#
# Every metric is a function of weighted per-class / per-bin sums over samples. A resample is a
# vector of multiplicities w (N,), so all sums for a chunk of resamples are one sparse product
# W @ counts with W (rows x N) holding per-sample contributions and counts (N x resamples). The
# point estimate is the same computation with w = 1, so estimate and intervals cannot drift.


def _resample_counts(n: int, config: BootstrapConfig, height: int = 0) -> Iterator[np.ndarray]:
    """Yield float64 (n, rows) multiplicity matrices, one column per resample.

    ``height`` is the number of sums per resample, so both the counts and the (height, rows)
    product stay within _BLOCK_ELEMENTS.
    """
    rng = np.random.default_rng(config.seed)
    per_chunk = max(1, _BLOCK_ELEMENTS // max(n, height))
    done = 0
    while done < config.resamples:
        rows = min(per_chunk, config.resamples - done)
        idx = rng.integers(0, n, size=(rows, n))
        # Sample-major layout (cell = sample * rows + resample) so the product reads rows.
        idx *= rows
        idx += np.arange(rows)[:, None]
        counts = np.bincount(idx.ravel(), minlength=n * rows).reshape(n, rows)
        yield counts.astype(np.float64)
        done += rows


@dataclass
class _Design:
    """Sparse contribution matrix for one score matrix plus its row layout."""

    matrix: sparse.csr_matrix
    n_classes: int  # rows per class block (union of GT classes and argmax predictions)
    blocks: dict[str, int]  # block name -> first row
    ks: tuple[int, ...]
    n_bins: int
    n: int

    @classmethod
    def build(
        cls,
        labels: np.ndarray,
        ranks: np.ndarray,
        pred: np.ndarray | None,
        ks: tuple[int, ...],
        nll: np.ndarray | None = None,
        conf: np.ndarray | None = None,
        n_bins: int = 15,
    ) -> _Design:
        n = labels.shape[0]
        classes = np.unique(labels) if pred is None else np.union1d(labels, pred)
        true_row = np.searchsorted(classes, labels)
        cols = np.arange(n)
        parts_r: list[np.ndarray] = []
        parts_c: list[np.ndarray] = []
        parts_v: list[np.ndarray] = []
        blocks: dict[str, int] = {}
        next_row = 0

        def add(name: str, height: int, rows: np.ndarray, values: np.ndarray,
                mask: np.ndarray | None = None) -> None:
            nonlocal next_row
            keep = cols if mask is None else cols[mask]
            sel = rows if mask is None else rows[mask]
            vals = values if mask is None else values[mask]
            blocks[name] = next_row
            parts_r.append(sel + next_row)
            parts_c.append(keep)
            parts_v.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), keep.shape))
            next_row += height

        n_cls = classes.shape[0]
        add("n", n_cls, true_row, np.ones(n))
        for k in ks:
            hit = ranks <= k
            add(f"hits@{k}", n_cls, true_row, np.ones(n), mask=hit)  # zeros dropped: fewer nnz
        if pred is not None:
            argmax_hit = pred == labels
            add("union_hits", n_cls, true_row, np.ones(n), mask=argmax_hit)
            add("pred", n_cls, np.searchsorted(classes, pred), np.ones(n))
        if nll is not None:
            add("nll", 1, np.zeros(n, dtype=np.int64), nll)
        if conf is not None:
            gap = (ranks == 1).astype(np.float64) - conf
            add("ece", n_bins, _ece_bins(conf, n_bins), gap)
        matrix = sparse.csr_matrix(
            (np.concatenate(parts_v), (np.concatenate(parts_r), np.concatenate(parts_c))),
            shape=(next_row, n),
        )
        return cls(matrix, n_cls, blocks, ks, n_bins, n)

    def evaluate(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Metric values for each column of counts (n, B) -> {key: (B,)}."""
        sums = np.asarray(self.matrix @ counts)
        c = self.n_classes

        def block(name: str, height: int | None = None) -> np.ndarray:
            start = self.blocks[name]
            return sums[start:start + (c if height is None else height)]

        n_c = block("n")
        present = n_c > 0  # classes present in this resample
        n_present = present.sum(axis=0)
        safe_n = np.where(present, n_c, 1.0)
        total = counts.sum(axis=0)
        out: dict[str, np.ndarray] = {}
        for k in self.ks:
            hits = block(f"hits@{k}")
            out[f"pi@{k}"] = hits.sum(axis=0) / total
            out[f"pc@{k}"] = (hits / safe_n).sum(axis=0) / n_present
        if "union_hits" in self.blocks:
            in_union = present | (block("pred") > 0)
            out["pc_union@1"] = (block("union_hits") / safe_n).sum(axis=0) / in_union.sum(axis=0)
        if "nll" in self.blocks:
            out["nll"] = block("nll", 1)[0] / total
        if "ece" in self.blocks:
            out["ece"] = np.abs(block("ece", self.n_bins)).sum(axis=0) / total
        return out


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _bootstrap_values(
    designs: Sequence[_Design], n: int, config: BootstrapConfig
) -> list[dict[str, np.ndarray]]:
    """Bootstrap distributions for each design, all on the same resamples."""
    chunks: list[list[dict[str, np.ndarray]]] = [[] for _ in designs]
    height = sum(design.matrix.shape[0] for design in designs)
    for counts in _resample_counts(n, config, height):
        for store, design in zip(chunks, designs):
            store.append(design.evaluate(counts))
    return [
        {key: np.concatenate([part[key] for part in store]) for key in store[0]}
        for store in chunks
    ]


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks_t = tuple(ks)
    if not ks_t:
        raise SlrbenchError("ks: found an empty sequence, expected positive integers like (1, 5)")
    for k in ks_t:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise SlrbenchError(f"ks: found {k!r}, expected positive integers")
    return tuple(sorted({int(k) for k in ks_t}))


# --------------------------------------------------------------------------------------------
# Entry points


def evaluate(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    num_classes: int | None = None,
    score_kind: str = "logits",
    ks: Sequence[int] = (1, 5),
    bootstrap: BootstrapConfig | None = BootstrapConfig(),
    n_bins: int = 15,
) -> Evaluation:
    """All metrics with bootstrap intervals (``bootstrap=None``: no intervals).

    Top-k keys (``pi@k``, ``pc@k``, ``per_class["hits@k"]``) are omitted for k > K.
    """
    _check_score_kind(score_kind)
    _expect_int(n_bins, "n_bins", minimum=1)
    ks_all = _check_ks(ks)
    if bootstrap is not None and not isinstance(bootstrap, BootstrapConfig):
        raise SlrbenchError(
            f"bootstrap: found {type(bootstrap).__name__}, expected BootstrapConfig or None"
        )
    s, y = _check_inputs(scores, labels, num_classes)
    n, k_total = s.shape
    ks_used = tuple(k for k in ks_all if k <= k_total)

    ranks = _ranks(s, y)
    pred = np.argmax(s, axis=1)  # upstream tie-break (lowest index), for pc_union@1 only
    nll, conf = _nll_and_confidence(s, y, score_kind)
    design = _Design.build(y, ranks, pred, ks_used, nll=nll, conf=conf, n_bins=n_bins)

    point = {key: float(v[0]) for key, v in design.evaluate(np.ones((n, 1))).items()}
    order = (
        [f"pi@{k}" for k in ks_used] + [f"pc@{k}" for k in ks_used]
        + ["pc_union@1", "nll", "ece"]
    )
    if bootstrap is None:
        metrics = {key: MetricValue(point[key]) for key in order}
    else:
        (dist,) = _bootstrap_values([design], n, bootstrap)
        metrics = {
            key: MetricValue(point[key], *_percentile_interval(dist[key], bootstrap.confidence))
            for key in order
        }

    n_c = np.bincount(y, minlength=k_total)
    per_class = {"n": n_c.astype(np.int64)}
    for k in ks_used:
        per_class[f"hits@{k}"] = np.bincount(y, weights=ranks <= k, minlength=k_total).astype(
            np.int64
        )
    return Evaluation(
        metrics=metrics,
        chance={"chance@1": 1.0 / k_total, "chance@5": min(5, k_total) / k_total},
        n=n,
        num_classes=k_total,
        classes_present=int((n_c > 0).sum()),
        per_class=per_class,
        bootstrap=bootstrap,
    )


def paired_bootstrap(
    scores_a: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    labels: npt.ArrayLike,
    num_classes: int | None = None,
    score_kind_a: str = "logits",
    score_kind_b: str = "logits",
    bootstrap: BootstrapConfig = BootstrapConfig(),
) -> PairedComparison:
    """McNemar exact test and paired bootstrap of ΔP-I@1, ΔP-C@1 (A − B),
    docs/evaluation.md#paired-comparisons.

    Rows are matched by position: callers align both records by sample id first. Score kinds
    are checked by name only, since ranks do not depend on them. A bootstrap p of 0 means no
    resample reached Δ = 0 (p < 2/B).
    """
    _check_score_kind(score_kind_a, "score_kind_a")
    _check_score_kind(score_kind_b, "score_kind_b")
    if not isinstance(bootstrap, BootstrapConfig):
        raise SlrbenchError(
            f"bootstrap: found {type(bootstrap).__name__}, expected BootstrapConfig"
        )
    sa, y = _check_inputs(scores_a, labels, num_classes, name="scores_a")
    sb = _check_scores(scores_b, name="scores_b", num_classes=sa.shape[1])
    if sb.shape != sa.shape:
        raise SlrbenchError(f"scores_b: found shape {sb.shape}, expected {sa.shape} as scores_a")
    n = y.shape[0]

    ranks_a, ranks_b = _ranks(sa, y), _ranks(sb, y)
    right_a, right_b = ranks_a == 1, ranks_b == 1
    b = int(np.count_nonzero(right_a & ~right_b))
    c = int(np.count_nonzero(~right_a & right_b))
    mcnemar_p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)

    designs = [_Design.build(y, r, None, (1,)) for r in (ranks_a, ranks_b)]
    ones = np.ones((n, 1))
    point_a, point_b = (d.evaluate(ones) for d in designs)
    dist_a, dist_b = _bootstrap_values(designs, n, bootstrap)

    delta: dict[str, MetricValue] = {}
    p_value: dict[str, float] = {}
    for key in ("pi@1", "pc@1"):
        diff = dist_a[key] - dist_b[key]
        delta[key] = MetricValue(
            float(point_a[key][0] - point_b[key][0]),
            *_percentile_interval(diff, bootstrap.confidence),
        )
        p_value[key] = float(min(1.0, 2.0 * min(np.mean(diff <= 0), np.mean(diff >= 0))))
    return PairedComparison(
        n=n, mcnemar_b=b, mcnemar_c=c, mcnemar_p=mcnemar_p, delta=delta, p_value=p_value,
        bootstrap=bootstrap,
    )


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p values, in the input order (family-wise error control)."""
    p = np.asarray(list(p_values), dtype=np.float64)
    if p.ndim != 1:
        raise SlrbenchError(f"p_values: found shape {p.shape}, expected a flat list of numbers")
    if p.size == 0:
        return []
    if not np.all(np.isfinite(p)) or (p < 0).any() or (p > 1).any():
        raise SlrbenchError(f"p_values: found {p.tolist()}, expected numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    # Step-down: the i-th smallest is multiplied by (m − i), then made monotone and capped at 1.
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]


# The default bootstrap settings, shared (the dataclass is frozen): one instance everywhere.
DEFAULT_BOOTSTRAP = BootstrapConfig()
