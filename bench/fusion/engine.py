"""Vectorised scoring of many fusion weight vectors at once (docs/evaluation.md#fusion-protocol).

Fusion is a normalised weighted sum F = Σ_s w_s X_s / Σ_s w_s of per-stream scores X (S, N, K) in
one score space. Searching weights (grid, bayes) and ablating streams (all 2^S − 1 subsets) need
top-k hits for thousands of weight vectors; computing each F densely is B·N·K·S work. `HitEngine`
gets the same hits from batched matrix products over a few candidate classes per sample:

* **Rivals.** Under non-negative weights only a class at or above the true class y in at least
  one stream can tie or beat it. A sample with fewer than k rivals hits top-k for every weight
  vector; one with k classes at or above y in *every* stream misses for every weight vector.
  Such samples are settled once.
* **Candidates.** For the others: all rivals when there are few (exact); otherwise the rivals
  among each stream's top-M rivals. Every other rival scores at most t_s (the (M+1)-th largest
  rival score) in each stream s, so its fused score is at most Σ w_s t_s (the *bound*).
* **Tiers.** One product (B, S) @ (S, N·C) scores the candidates for a batch of weight vectors.
  The pessimistic rank of y among candidates, r_c = |{c : F_c ≥ F_y}|, is a lower bound of its
  full rank: r_c > k is a miss; r_c ≤ k with F_y above the bound is a hit. Large batches first
  use narrow candidates (top-M1), then re-score the undetermined (weight vector, sample) pairs on
  the wide set (top-M2), then on the sample's full rival set, which is exact.

The result equals dense evaluation with the pessimistic tie rule of metrics.py
(docs/evaluation.md#tie-rule): weights are only rescaled by powers of two, so exact ties stay exact;
scores closer than float32 rounding may rank differently than in float64. Weights must be
non-negative with a positive sum.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp

from slrbench.errors import SlrbenchError
from slrbench.metrics import PROB_EPS, to_probabilities
from slrbench.threads import blas_threads

SPACES = ("logits", "probs", "log_probs")
# Fused-score kind per space (docs/evaluation.md#per-sample-outputs, score_kind). A weighted mean of
# probabilities is a probability; a weighted mean of log-probabilities is not normalised, so it is
# stored as logits (softmax of it is the fused distribution, ranks are unchanged).
FUSED_KIND = {"logits": "logits", "probs": "probs", "log_probs": "logits"}
# Elements per batched temporary (B x N x C); bounds memory at ~16 MB per buffer.
_BLOCK = 1 << 22
# Candidates per stream in the narrow and wide tiers: more cost linearly, fewer stay undetermined.
NARROW_PER_STREAM = 6
WIDE_PER_STREAM = 32
# Samples with at most this many rivals are scored on all of them (exact, no bound).
EXACT_CAP = 48
# Batches at least this large are scored sample by sample (one GEMM each, no padding); smaller
# ones by bucket (one GEMM covers many samples).
_PER_SAMPLE_MIN_ROWS = 64
_WORKERS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


def to_space(scores: np.ndarray, score_kind: str, space: str, where: str) -> np.ndarray:
    """Scores of one record in the fusion `space` as float32 (N, K).

    Logits convert to probabilities (softmax) or log-probabilities; probabilities and
    log-probabilities convert into each other; nothing converts back to logits (mixing score
    kinds needs an explicit, recorded conversion: docs/evaluation.md#score-spaces).
    """
    if space not in SPACES:
        raise SlrbenchError(f"--space: found {space!r}; expected one of {', '.join(SPACES)}")
    if score_kind == "pred_top1":
        raise SlrbenchError(f"{where}: score_kind is 'pred_top1'; expected scores "
                            "(prediction-only records cannot enter fusion, see "
                            "docs/evaluation.md#per-sample-outputs)")
    if score_kind == space:
        return np.asarray(scores, dtype=np.float32)
    if space == "logits":
        raise SlrbenchError(f"{where}: score_kind is {score_kind!r}; expected 'logits' for "
                            "--space logits (use --space probs to fuse probabilities)")
    if space == "probs":
        return to_probabilities(scores, score_kind).astype(np.float32)
    if score_kind == "probs":  # probs -> log_probs, clipped like metrics' NLL
        return np.log(np.clip(to_probabilities(scores, "probs"), PROB_EPS, None)).astype(
            np.float32)
    s = np.asarray(scores, dtype=np.float64)  # logits -> log-softmax
    top = s.max(axis=1, keepdims=True)
    return (s - top - np.log(np.exp(s - top).sum(axis=1, keepdims=True))).astype(np.float32)


def check_weights(weights: np.ndarray | Sequence[float], n_streams: int,
                  name: str = "weights") -> np.ndarray:
    """(B, S) float64 non-negative rows with positive sums (a 1-D vector becomes one row)."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.ndim != 2 or w.shape[1] != n_streams:
        raise SlrbenchError(f"{name}: found shape {w.shape}; expected (B, {n_streams}), one "
                            "weight per stream")
    if not np.isfinite(w).all() or (w < 0).any():
        raise SlrbenchError(f"{name}: found negative or non-finite weights; expected finite "
                            "weights >= 0")
    if (w.sum(axis=1) <= 0).any():
        raise SlrbenchError(f"{name}: found a weight vector summing to 0; expected at least one "
                            "positive weight")
    return w


def normalised(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum(axis=-1, keepdims=True)


def _power_of_two_scaled(weights: np.ndarray) -> np.ndarray:
    """Rows divided by a power of two near their maximum: ranks need no normalisation, and an
    exact scaling keeps exact ties exact (Σ w_s / Σ w would round each term)."""
    exponent = np.floor(np.log2(weights.max(axis=1, keepdims=True)))
    return weights / np.exp2(exponent)


def fused_scores(scores: np.ndarray, weights: np.ndarray | Sequence[float]) -> np.ndarray:
    """F = Σ w_s X_s / Σ w_s for one weight vector: (S, N, K) -> (N, K) float32.

    The sum is taken in float64 before the division, so scores that tie exactly stay tied.
    """
    w = check_weights(weights, scores.shape[0])[0]
    total = np.zeros(scores.shape[1:], dtype=np.float64)
    for weight, stream in zip(w, scores):
        if weight:
            total += weight * stream.astype(np.float64)
    return (total / w.sum()).astype(np.float32)


@dataclass(frozen=True)
class _Sample:
    """One sample with many rivals, unpadded: scores (S, width) with the true class first and
    the narrow candidates next; bounds cap the rivals outside the narrow / all columns."""

    row: int
    scores: np.ndarray
    narrow: int
    bound_narrow: np.ndarray
    bound_wide: np.ndarray


@dataclass(frozen=True)
class _Bucket:
    """Samples with similar candidate counts, padded to one width. Column j * Nb + i of `scores`
    is candidate j of sample i (j = 0: the true class)."""

    members: np.ndarray  # sample rows (Nb,)
    width: int
    scores: np.ndarray  # (S, width * Nb)
    bound: np.ndarray | None  # (S, Nb) cap of rivals outside the columns; None when exact


def _above(fy: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """fy > bound with a relative margin, so rounding between the two products stays safe."""
    return fy > bound + 1e-6 * (np.abs(bound) + np.abs(fy))


_POOL: list[ThreadPoolExecutor] = []


def _parallel(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """fn over items on a few threads (numpy releases the GIL inside GEMMs and reductions)."""
    with blas_threads(1):  # skinny GEMMs run best single-threaded
        if len(items) > 1 and _WORKERS > 1:
            if not _POOL:
                _POOL.append(ThreadPoolExecutor(_WORKERS, thread_name_prefix="slrbench-fuse"))
            return list(_POOL[0].map(fn, items))
        return [fn(item) for item in items]


def chunks(total: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most `size` (at least 1) covering range(total)."""
    size = max(1, size)
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))


def _groups(keys: np.ndarray) -> Iterator[np.ndarray]:
    """Positions of equal values in `keys`, one array per distinct value."""
    if keys.size == 0:
        return
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0])
    for lo, hi in zip(starts, np.r_[starts[1:], order.size]):
        yield order[lo:hi]


def hit_accuracies(hits: dict[int, np.ndarray], labels: np.ndarray) -> dict[str, np.ndarray]:
    """{"pi@k", "pc@k": (B,)} from bool hits (B, N): P-I@k is the mean hit, P-C@k the mean over
    classes present of per-class hit rates
    (docs/evaluation.md#per-instance-accuracy, #per-class-accuracy)."""
    # P-C@k = Σ_n hit_n / (n_class(y_n) · classes present): one matrix-vector product for all B
    # vectors (float64; equal to the per-class mean up to rounding, ~1e-16).
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sample_weight = 1.0 / (counts[inverse] * counts.size).astype(np.float64)
    out: dict[str, np.ndarray] = {}
    for k, h in sorted(hits.items()):
        out[f"pi@{k}"] = h.mean(axis=1)
        out[f"pc@{k}"] = h.astype(np.float64) @ sample_weight
    return out


class HitEngine:
    """Top-k hits of many weight vectors on one split's stacked scores (S, N, K) and labels."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5),
                 narrow: int = NARROW_PER_STREAM, wide: int = WIDE_PER_STREAM,
                 exact_cap: int = EXACT_CAP) -> None:
        x = np.ascontiguousarray(scores, dtype=np.float32)
        if x.ndim != 3 or 0 in x.shape:
            raise SlrbenchError(f"scores: found shape {x.shape}; expected non-empty (S, N, K)")
        self.n_streams, self.n, self.k = x.shape
        self.ks = tuple(sorted({int(k) for k in ks if 1 <= k <= self.k}))
        if not self.ks:
            raise SlrbenchError(f"ks: found {tuple(ks)}; expected values in [1, K={self.k}]")
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.shape != (self.n,):
            raise SlrbenchError(f"labels: found shape {self.labels.shape}; expected ({self.n},)")
        self._x = x
        self._m1 = max(1, min(narrow, wide))
        self._m2 = max(self._m1, wide)
        self._samples: list[_Sample] = []
        self._buckets: list[_Bucket] = []
        self._build(max(exact_cap, self._m2 + 1))
        self.undetermined = 0  # (vector, sample) pairs the last `hits` call re-scored

    # ----------------------------------------------------------------------------- build

    def _build(self, exact_cap: int) -> None:
        x, y, n, k = self._x, self.labels, self.n, self.k
        rows = np.arange(n)
        true = x[:, rows, y]  # (S, N)
        self._rivals = np.zeros((n, k), dtype=bool)
        dominators = np.zeros(n, dtype=np.int64)
        for part in chunks(n, max(1, _BLOCK // (k * self.n_streams))):
            above = x[:, part] >= true[:, part, None]
            self._rivals[part] = above.any(axis=0)
            dominators[part] = above.all(axis=0).sum(axis=1) - 1  # minus the true class
        self._rivals[rows, y] = False
        n_rivals = self._rivals.sum(axis=1)
        # 1: hit for every weight vector, 0: miss for every one, -1: depends on the weights.
        self._constant = {kk: np.where(n_rivals < kk, 1, np.where(dominators >= kk, 0, -1))
                          for kk in self.ks}
        varying = np.flatnonzero(np.any([c < 0 for c in self._constant.values()], axis=0))
        exact = n_rivals[varying] <= exact_cap
        low = x.min(axis=2)
        floor = low - (x.max(axis=2) - low) - 1.0  # below every real score, any weights
        for is_exact in (True, False):
            chosen = varying[exact == is_exact]
            if chosen.size:
                self._add_candidates(chosen, is_exact, true, floor)

    def _add_candidates(self, samples: np.ndarray, exact: bool, true: np.ndarray,
                        floor: np.ndarray) -> None:
        """Candidate columns of `samples`, per sample and in buckets of similar width."""
        x, s_count = self._x, self.n_streams
        # Per sample and class: 0 narrow candidate, 1 wide-only candidate, 2 not a candidate.
        tier = np.full((samples.size, self.k), 2, dtype=np.int8)
        bound_narrow = floor[:, samples].copy()
        bound_wide = floor[:, samples].copy()
        rivals = self._rivals[samples]
        if exact:
            tier[rivals] = 0
        else:
            for part in chunks(samples.size, max(1, _BLOCK // (self.k * s_count))):
                masked = np.where(rivals[part][None], x[:, samples[part]], -np.inf)
                top = torch.from_numpy(masked).topk(self._m2 + 1, dim=2)
                values, index = top.values.numpy(), top.indices.numpy()
                bound_narrow[:, part] = values[:, :, self._m1]
                bound_wide[:, part] = values[:, :, self._m2]
                local = np.arange(part.stop - part.start)[None, :, None]
                sub = tier[part]
                sub[local, index[:, :, :self._m2]] = 1
                sub[local, index[:, :, :self._m1]] = 0
        n_narrow = (tier == 0).sum(axis=1)
        n_wide = (tier <= 1).sum(axis=1)
        order = np.argsort(tier, axis=1, kind="stable")  # narrow, then wide-only candidates
        level = np.ceil(np.log2(np.maximum(n_wide, 1))).astype(np.int64)
        for group in _groups(level):
            members = samples[group]
            width = int(n_wide[group].max())
            pad = np.arange(width)[None, :] >= n_wide[group, None]
            g = x[:, members[:, None], order[group, :width]]  # (S, Nb, width)
            g = np.where(pad[None], floor[:, members, None], g)
            g = np.concatenate([true[:, members, None], g], axis=2)  # true class first
            self._buckets.append(_Bucket(
                members, width + 1,
                np.ascontiguousarray(g.transpose(0, 2, 1)).reshape(s_count, -1),
                None if exact else np.ascontiguousarray(bound_wide[:, group])))
            if exact:
                continue  # exact buckets are final in one product, whatever the batch size
            for j, i in enumerate(group):
                self._samples.append(_Sample(
                    int(samples[i]), np.ascontiguousarray(g[:, j, :n_wide[i] + 1]),
                    int(n_narrow[i] + 1), bound_narrow[:, i].copy(), bound_wide[:, i].copy()))

    # ----------------------------------------------------------------------------- hits

    def hits(self, weights: np.ndarray) -> dict[int, np.ndarray]:
        """{k: bool (B, N)} top-k hits (pessimistic ties) for each weight vector (row)."""
        w = _power_of_two_scaled(check_weights(weights, self.n_streams)).astype(np.float32)
        out = {k: np.broadcast_to(self._constant[k] == 1, (w.shape[0], self.n)).copy()
               for k in self.ks}
        if w.shape[0] >= _PER_SAMPLE_MIN_ROWS:
            exact = [b for b in self._buckets if b.bound is None]
            self.undetermined = (self._hits_bucketed(w, out, exact)
                                 + self._hits_per_sample(w, out))
        else:
            self.undetermined = self._hits_bucketed(w, out, self._buckets)
        for k in self.ks:  # settled samples keep their constant value
            fixed = self._constant[k] >= 0
            out[k][:, fixed] = self._constant[k][fixed] == 1
        return out

    def _stage(self, w: np.ndarray, g: np.ndarray,
               bound: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Rank of the true class (column 0 of g) among g's columns, and whether that rank is
        final (no rival outside g can reach the true class)."""
        fused = w @ g
        rank = np.count_nonzero(fused >= fused[:, :1], axis=1)
        sure = np.ones(rank.size, dtype=bool) if bound is None else _above(fused[:, 0], w @ bound)
        return rank, sure

    def _rival_scores(self, row: int) -> np.ndarray:
        """(S, 1 + rivals): the true class, then every class that can reach it (exact)."""
        return self._x[:, row, np.r_[self.labels[row], np.flatnonzero(self._rivals[row])]]

    def _hits_per_sample(self, w: np.ndarray, out: dict[int, np.ndarray]) -> int:
        """Large batches, samples with many rivals: one GEMM (B, S) @ (S, candidates) per sample
        on the narrow candidates, then on the wide ones and on the full rival set for the
        vectors still undetermined (no padding, and each tier only sees what is left)."""
        kmax = max(self.ks)
        found = {k: np.empty((self.n, w.shape[0]), dtype=bool) for k in self.ks}

        def score(sample: _Sample) -> int:
            rows, redone = np.arange(w.shape[0]), 0
            stages = [(sample.scores[:, :sample.narrow], sample.bound_narrow)]
            if sample.narrow < sample.scores.shape[1]:
                stages.append((sample.scores, sample.bound_wide))
            for g, bound in stages + [(None, None)]:
                if g is None:
                    g = self._rival_scores(sample.row)
                rank, sure = self._stage(w[rows], g, bound)
                for k in self.ks:
                    found[k][sample.row, rows] = (rank <= k) & sure
                rows = rows[~sure & (rank <= kmax)]
                if not rows.size:
                    break
                redone += rows.size
            return redone

        if not self._samples:
            return 0
        redone = sum(_parallel(score, self._samples))
        rows = np.array([sample.row for sample in self._samples], dtype=np.int64)
        for k in self.ks:
            out[k][:, rows] = found[k][rows].T
        return redone

    def _hits_bucketed(self, w: np.ndarray, out: dict[int, np.ndarray],
                       buckets: Sequence[_Bucket]) -> int:
        """One GEMM per bucket covers all its samples (wide candidates); undetermined pairs
        are re-ranked on their sample's full rival set."""
        kmax = max(self.ks)

        def score(task: tuple[_Bucket, slice]) -> tuple[np.ndarray, np.ndarray]:
            bucket, rows = task
            nb, c = bucket.members.size, bucket.width
            fused = (w[rows] @ bucket.scores).reshape(-1, c, nb)
            fy = fused[:, 0, :]
            rank = 1 + np.count_nonzero(fused[:, 1:, :] >= fy[:, None, :], axis=1)
            sure = (np.ones_like(rank, dtype=bool) if bucket.bound is None
                    else _above(fy, w[rows] @ bucket.bound))
            block = np.ix_(np.arange(rows.start, rows.stop), bucket.members)
            for k in self.ks:
                out[k][block] = (rank <= k) & sure
            b_idx, i_idx = np.nonzero((rank <= kmax) & ~sure)
            return b_idx + rows.start, bucket.members[i_idx]

        tasks = [(bucket, rows) for bucket in buckets
                 for rows in chunks(w.shape[0], max(1, _BLOCK // bucket.scores.shape[1]))]
        pending = _parallel(score, tasks)
        b_idx = np.concatenate([p[0] for p in pending] or [np.zeros(0, np.int64)])
        n_idx = np.concatenate([p[1] for p in pending] or [np.zeros(0, np.int64)])
        for group in _groups(n_idx):
            row, vectors = int(n_idx[group[0]]), b_idx[group]
            rank, _ = self._stage(w[vectors], self._rival_scores(row), None)
            for k in self.ks:
                out[k][vectors, row] = rank <= k
        return int(b_idx.size)

    # ------------------------------------------------------------------------- margins

    def top1_margins(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The top-1 problem as margins, for line searches (bench/fusion/lines.py).

        Returns (margins (S, C) float32, segment (C,) int64, always): column c holds X_y − X_c
        per stream for one candidate class c of one weight-dependent sample, columns grouped by
        sample (segment 0, 1, … ascending); `always` counts the samples that are top-1 hits for
        every weight vector. A sample with few rivals has a column per rival (exact); one with
        many has its narrow candidates only, so beating its columns is necessary for a hit, not
        sufficient (counts built on them are upper bounds; the rivals left out rarely matter).
        """
        if 1 not in self.ks:
            raise SlrbenchError(f"top1_margins: found ks {self.ks}; expected an engine with k=1")
        constant = self._constant[1]
        narrow = {s.row: s for s in self._samples}
        rows = np.flatnonzero(constant < 0)
        exact_rows = rows[[int(r) not in narrow for r in rows]]
        parts: list[np.ndarray] = []
        segments: list[np.ndarray] = []
        if exact_rows.size:
            seg, cls = np.nonzero(self._rivals[exact_rows])
            true = self._x[:, exact_rows[seg], self.labels[exact_rows[seg]]]
            parts.append(true - self._x[:, exact_rows[seg], cls])
            segments.append(seg)
        for i, row in enumerate(rows[[int(r) in narrow for r in rows]]):
            sample = narrow[int(row)]
            parts.append(sample.scores[:, :1] - sample.scores[:, 1:sample.narrow])
            segments.append(np.full(sample.narrow - 1, exact_rows.size + i, dtype=np.int64))
        margins = (np.concatenate(parts, axis=1) if parts
                   else np.zeros((self.n_streams, 0), dtype=np.float32))
        segment = np.concatenate(segments) if segments else np.zeros(0, dtype=np.int64)
        return (np.ascontiguousarray(margins, dtype=np.float32), segment.astype(np.int64),
                int((constant == 1).sum()))

    # --------------------------------------------------------------------------- metrics

    def hit_counts(self, weights: np.ndarray, k: int = 1) -> np.ndarray:
        """Number of top-k hits per weight vector (int64 (B,)): the search objective."""
        return self.hits(weights)[k].sum(axis=1)

    def accuracies(self, hits: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
        """P-I@k and P-C@k per weight vector from `hits` (see `hit_accuracies`)."""
        return hit_accuracies(hits, self.labels)

    def nll(self, weights: np.ndarray, space: str) -> np.ndarray:
        """Mean −log p(y) of the fused scores per weight vector, clipped like metrics.py (dense:
        used only to break ties between searched weight vectors)."""
        w = normalised(check_weights(weights, self.n_streams)).astype(np.float32)
        rows = np.arange(self.n)
        out = np.empty(w.shape[0])
        for i, row in enumerate(w):
            fused = np.tensordot(row, self._x, axes=1).astype(np.float64)  # (N, K)
            true = fused[rows, self.labels]
            if FUSED_KIND[space] == "probs":
                log_true = np.log(np.clip(true, PROB_EPS, None))
            else:
                log_true = np.maximum(true - logsumexp(fused, axis=1), np.log(PROB_EPS))
            out[i] = -log_true.mean()
        return out
