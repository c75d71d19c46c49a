"""Vectorised fusion scoring equals brute-force NumPy and metrics.py, ties included."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from slrbench.errors import SlrbenchError
from slrbench.fusion.engine import HitEngine, check_weights, fused_scores, hit_accuracies, to_space
from slrbench.metrics import evaluate, topk_hits


def brute_hits(scores: np.ndarray, labels: np.ndarray, w: np.ndarray) -> dict[int, np.ndarray]:
    """Reference: dense float64 weighted mean, pessimistic rank, one vector at a time."""
    fused = sum(wi * scores[i].astype(np.float64) for i, wi in enumerate(w)) / w.sum()
    return {k: topk_hits(fused, labels, k) for k in (1, 5)}


def correlated(s: int, n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    shared = rng.standard_normal((n, k))
    x = 0.8 * shared + 0.6 * rng.standard_normal((s, n, k))
    x[:, np.arange(n), labels] += rng.normal(1.5, 1.2, n)
    return x.astype(np.float32), labels


def test_fused_scores_equal_numpy_reference() -> None:
    x, _ = correlated(3, 20, 6, 0)
    w = np.array([1.0, 0.9, 0.5])
    expected = np.einsum("s,snk->nk", w / w.sum(), x.astype(np.float64))
    np.testing.assert_allclose(fused_scores(x, w), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("narrow,wide,exact_cap", [(4, 32, 48), (1, 2, 3), (2, 5, 6)])
def test_subset_hits_equal_loop(narrow: int, wide: int, exact_cap: int) -> None:
    """All subsets (the large-batch path) and a few vectors (the bucketed path), with tiny
    candidate sets so that bounds, re-scoring and the exact rival fallback all run."""
    x, labels = correlated(5, 120, 40, 1)
    engine = HitEngine(x, labels, narrow=narrow, wide=wide, exact_cap=exact_cap)
    masks = np.array(list(itertools.product([0, 1], repeat=5))[1:], dtype=float)
    weights = masks * np.random.default_rng(2).uniform(0.2, 1.5, 5)
    for batch in (weights, weights[:7]):
        hits = engine.hits(batch)
        for i, w in enumerate(batch):
            ref = brute_hits(x, labels, w)
            for k in (1, 5):
                assert np.array_equal(hits[k][i], ref[k]), (narrow, wide, k, i)
    assert engine.undetermined >= 0


def test_exact_ties_are_pessimistic() -> None:
    """Integer scores and dyadic weights: sums are exact, so ties are real ties."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (3, 60, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 60)
    x[:, 0, :] = 1.0  # constant row: rank K, never a hit (not 1/K)
    engine = HitEngine(x, labels, exact_cap=2, wide=2, narrow=1)
    weights = np.array([[1, 0.5, 0.25], [1, 1, 1], [0, 0, 1], [2, 0, 0.5]])
    hits = engine.hits(weights)
    for i, w in enumerate(weights):
        ref = brute_hits(x, labels, w)
        assert np.array_equal(hits[1][i], ref[1]) and np.array_equal(hits[5][i], ref[5])
    assert not hits[1][:, 0].any() and not hits[5][:, 0].any()


def test_accuracies_match_metrics_evaluate() -> None:
    x, labels = correlated(4, 90, 12, 4)
    w = np.array([[1.0, 0.9, 0.5, 0.5]])
    engine = HitEngine(x, labels)
    acc = engine.accuracies(engine.hits(w))
    ref = evaluate(fused_scores(x, w[0]), labels, bootstrap=None).metrics
    for key in ("pi@1", "pi@5", "pc@1", "pc@5"):
        assert acc[key][0] == pytest.approx(ref[key].value)
    all_hits = hit_accuracies({1: np.ones((1, 90), bool)}, labels)
    assert all_hits["pc@1"][0] == pytest.approx(1.0, abs=1e-12)


def test_small_vocabulary_drops_top5() -> None:
    x, labels = correlated(2, 30, 3, 5)
    engine = HitEngine(x, labels)
    assert engine.ks == (1,)
    assert set(engine.accuracies(engine.hits(np.ones((1, 2))))) == {"pi@1", "pc@1"}


def test_nll_matches_metrics() -> None:
    x, labels = correlated(3, 40, 9, 6)
    w = np.array([0.2, 1.0, 0.7])
    engine = HitEngine(x, labels)
    expected = evaluate(fused_scores(x, w), labels, bootstrap=None).metrics["nll"].value
    assert engine.nll(w[None], "logits")[0] == pytest.approx(expected, rel=1e-5)
    probs = np.stack([softmax(s, axis=1) for s in x.astype(np.float64)]).astype(np.float32)
    ref = evaluate(fused_scores(probs, w), labels, score_kind="probs", bootstrap=None)
    assert HitEngine(probs, labels).nll(w[None], "probs")[0] == pytest.approx(
        ref.metrics["nll"].value, rel=1e-5)


def test_score_space_conversions_and_errors() -> None:
    logits = np.random.default_rng(7).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(to_space(logits, "logits", "probs", "r"), softmax(logits, axis=1),
                               rtol=1e-5)
    np.testing.assert_allclose(to_space(logits, "logits", "log_probs", "r"),
                               log_softmax(logits, axis=1), rtol=1e-5, atol=1e-6)
    probs = softmax(logits, axis=1).astype(np.float32)
    with pytest.raises(SlrbenchError, match="score_kind is 'probs'; expected 'logits'"):
        to_space(probs, "probs", "logits", "record r1")
    with pytest.raises(SlrbenchError, match="pred_top1"):
        to_space(logits, "pred_top1", "probs", "record r1")
    with pytest.raises(SlrbenchError, match="summing to 0"):
        check_weights([0.0, 0.0], 2)
    with pytest.raises(SlrbenchError, match="negative"):
        check_weights([1.0, -1.0], 2)
