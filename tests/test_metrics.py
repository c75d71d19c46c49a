"""Tests for slrbench.metrics (docs/evaluation.md#metrics, #uncertainty-and-comparisons)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy import stats
from scipy.special import log_softmax, softmax
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    log_loss,
    top_k_accuracy_score,
)

from slrbench import metrics as M
from slrbench.errors import SlrbenchError
from slrbench.metrics import (
    METRIC_KEYS,
    METRIC_LABELS,
    BootstrapConfig,
    Evaluation,
    MetricValue,
    evaluate,
    expected_calibration_error,
    holm_bonferroni,
    negative_log_likelihood,
    paired_bootstrap,
    per_class_accuracy,
    per_instance_accuracy,
    to_probabilities,
    topk_hits,
    true_class_rank,
    union_class_accuracy,
)

# 4 samples, 3 classes. Row 1 ties classes 0 and 1 (true class 0): the pessimistic rank is 2,
# upstream argmax would predict 0 and count a hit. Class 1 has no ground-truth sample.
HAND_PROBS = np.array(
    [
        [0.70, 0.20, 0.10],  # y=0, rank 1, conf 0.70, right
        [0.50, 0.50, 0.00],  # y=0, tie -> rank 2, conf 0.50, wrong
        [0.15, 0.55, 0.30],  # y=2, rank 2, conf 0.55, wrong
        [0.00, 0.00, 1.00],  # y=2, rank 1, conf 1.00, right
    ]
)
HAND_LABELS = np.array([0, 0, 2, 2])


def random_problem(n: int, k: int, acc: float = 0.8, seed: int = 0, boost: float = 3.0):
    """Tie-free float64 logits with roughly `acc` top-1 accuracy; every class present if n >> k."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)]) if n >= k else \
        rng.integers(0, k, n)
    rng.shuffle(labels)
    logits = rng.normal(size=(n, k))
    good = rng.random(n) < acc
    logits[np.flatnonzero(good), labels[good]] += boost
    return logits, labels


def from_correctness(correct: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose top-1 is right exactly where `correct` is true."""
    n = correct.shape[0]
    labels = np.arange(n) % k
    logits = np.zeros((n, k))
    target = np.where(correct, labels, (labels + 1) % k)
    logits[np.arange(n), target] = 5.0
    return logits, labels


def pyskl_mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Transcription of pyskl/mmaction2 `mean_class_accuracy` (confusion over the label union)."""
    pred = np.argmax(scores, axis=1)
    label_set = np.unique(np.concatenate((pred, labels)))
    index = {c: i for i, c in enumerate(label_set)}
    cf = np.zeros((len(label_set), len(label_set)))
    for real, p in zip(labels, pred):
        cf[index[real], index[p]] += 1
    cnt, hit = cf.sum(axis=1), np.diag(cf)
    return float(np.mean([h / c if c else 0.0 for c, h in zip(cnt, hit)]))


# ------------------------------------------------------------------------------------------
# Hand-computed cases


def test_hand_case_ranks_and_accuracies():
    ranks = true_class_rank(HAND_PROBS, HAND_LABELS)
    assert ranks.dtype == np.int64
    assert ranks.tolist() == [1, 2, 2, 1]
    hits1 = topk_hits(HAND_PROBS, HAND_LABELS, 1)
    assert hits1.tolist() == [True, False, False, True]
    assert topk_hits(HAND_PROBS, HAND_LABELS, 2).all()
    assert per_instance_accuracy(hits1) == 0.5
    # class 0: 1/2, class 2: 1/2, class 1 absent -> 2 classes present
    assert per_class_accuracy(hits1, HAND_LABELS, 3) == (0.5, 2)
    # argmax = [0, 0 (tie, lowest index), 1, 2]; union {0,1,2}: (2/2 + 0 + 1/2) / 3
    assert union_class_accuracy(np.argmax(HAND_PROBS, 1), HAND_LABELS) == pytest.approx(0.5)


def test_hand_case_evaluate():
    ev = evaluate(HAND_PROBS, HAND_LABELS, score_kind="probs", ks=(1, 2, 5), bootstrap=None)
    assert list(ev.metrics) == ["pi@1", "pi@2", "pc@1", "pc@2", "pc_union@1", "nll", "ece"]
    values = {key: mv.value for key, mv in ev.metrics.items()}
    assert values["pi@1"] == 0.5 and values["pi@2"] == 1.0
    assert values["pc@1"] == 0.5 and values["pc@2"] == 1.0
    assert values["pc_union@1"] == pytest.approx(0.5)
    nll = -(math.log(0.7) + math.log(0.5) + math.log(0.3) + math.log(1.0)) / 4
    assert values["nll"] == pytest.approx(nll, abs=1e-12)
    assert values["ece"] == pytest.approx(0.3375, abs=1e-12)
    assert all(mv.ci_low is None and mv.ci_high is None for mv in ev.metrics.values())
    assert ev.n == 4 and ev.num_classes == 3 and ev.classes_present == 2
    assert ev.chance == {"chance@1": pytest.approx(1 / 3), "chance@5": 1.0}  # min(5, K)/K
    assert ev.per_class["n"].tolist() == [2, 0, 2]
    assert ev.per_class["hits@1"].tolist() == [1, 0, 1]
    assert ev.per_class["hits@2"].tolist() == [2, 0, 2]
    assert "hits@5" not in ev.per_class  # k > K is omitted, not clamped


def test_hand_case_nll_and_ece():
    nll = -(math.log(0.7) + math.log(0.5) + math.log(0.3)) / 4
    assert negative_log_likelihood(HAND_PROBS, HAND_LABELS, "probs") == pytest.approx(nll)
    # Bins (lo, hi]. 5 bins: {0.5, 0.55} acc 0 conf 0.525 -> 2/4*0.525; {0.7} acc 1 -> 1/4*0.3;
    # {1.0} acc 1 -> 0. Total 0.2625 + 0.075 = 0.3375.
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS, "probs", 5) == pytest.approx(0.3375)
    # 15 bins split 0.5 and 0.55 but every gap has the same sign: (0.5 + 0.55 + 0.3) / 4.
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS, "probs") == pytest.approx(0.3375)
    # One bin: |acc 0.5 − mean conf 0.6875| = 0.1875.
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS, "probs", 1) == pytest.approx(0.1875)


def test_nll_clips_zero_probability():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    value = negative_log_likelihood(probs, np.array([1, 0]), "probs")
    assert value == pytest.approx((-math.log(M.PROB_EPS) - math.log(0.5)) / 2)


def test_ece_counts_ties_as_wrong():
    # The 0.75 bin is calibrated (3/4 right); the tied 0.5 rows are wrong under the tie rule.
    probs = np.array([[0.75, 0.25]] * 4 + [[0.5, 0.5]] * 2)
    labels = np.array([0, 0, 0, 1, 1, 0])  # conf 0.75: 3/4 right; conf 0.5 ties -> both wrong
    # Pessimistic ties make the 0.5 rows wrong (acc 0 vs conf 0.5): ECE = 2/6 * 0.5.
    assert expected_calibration_error(probs, labels, "probs", 10) == pytest.approx(1 / 6)


# ------------------------------------------------------------------------------------------
# Tie rule and the union variant


def test_constant_scores_score_zero_not_chance():
    k = 4
    labels = np.arange(12) % k
    scores = np.zeros((12, k))
    ranks = true_class_rank(scores, labels)
    assert (ranks == k).all()
    ev = evaluate(scores, labels, bootstrap=None)
    assert ev.metrics["pi@1"].value == 0.0 and ev.metrics["pc@1"].value == 0.0
    assert "pi@5" not in ev.metrics and "pc@5" not in ev.metrics  # K = 4 < 5
    # Upstream argmax predicts class 0 everywhere: accuracy 1/K, union variant 1/K too.
    assert accuracy_score(labels, np.argmax(scores, 1)) == pytest.approx(1 / k)
    assert ev.metrics["pc_union@1"].value == pytest.approx(1 / k)
    assert ev.metrics["ece"].value == pytest.approx(1 / k)  # conf 1/K, acc 0


def test_union_variant_vs_present_classes():
    # Class 2 is predicted but has no ground-truth sample.
    labels = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])
    scores = np.eye(3)[pred]
    hits = pred == labels
    assert per_class_accuracy(hits, labels, 3) == (0.75, 2)  # (1/2 + 2/2) / 2
    assert union_class_accuracy(pred, labels) == pytest.approx(0.5)  # (1/2 + 1 + 0) / 3
    ev = evaluate(scores, labels, bootstrap=None)
    assert ev.metrics["pc@1"].value == 0.75
    assert ev.metrics["pc_union@1"].value == pytest.approx(0.5)
    expected = pyskl_mean_class_accuracy(scores, labels)
    assert ev.metrics["pc_union@1"].value == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_union_matches_pyskl_transcription(seed):
    rng = np.random.default_rng(seed)
    k = 12
    labels = rng.integers(0, 8, 40)  # classes 8..11 absent from ground truth
    scores = rng.normal(size=(40, k))
    scores[:, 8:] += 0.7  # so the absent classes are predicted now and then
    ev = evaluate(scores, labels, num_classes=k, bootstrap=None)
    expected = pyskl_mean_class_accuracy(scores, labels)
    assert ev.metrics["pc_union@1"].value == pytest.approx(expected)
    assert union_class_accuracy(np.argmax(scores, 1), labels) == pytest.approx(expected)
    assert ev.metrics["pc_union@1"].value <= ev.metrics["pc@1"].value + 1e-12  # tie-free
    assert ev.classes_present == len(np.unique(labels))


# ------------------------------------------------------------------------------------------
# Agreement with scikit-learn on tie-free data


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_sklearn(seed):
    k = 20
    logits, labels = random_problem(500, k, acc=0.6, seed=seed)
    ev = evaluate(logits, labels, bootstrap=None)
    pred = np.argmax(logits, 1)
    assert ev.classes_present == k
    assert ev.metrics["pi@1"].value == pytest.approx(accuracy_score(labels, pred))
    top5 = top_k_accuracy_score(labels, logits, k=5, labels=np.arange(k))
    assert ev.metrics["pi@5"].value == pytest.approx(top5)
    assert ev.metrics["pc@1"].value == pytest.approx(balanced_accuracy_score(labels, pred))
    nll = log_loss(labels, softmax(logits, axis=1), labels=np.arange(k))
    assert ev.metrics["nll"].value == pytest.approx(nll, rel=1e-9)
    assert per_instance_accuracy(topk_hits(logits, labels, 5)) == pytest.approx(top5)


def test_per_class_top5_by_hand_loop():
    logits, labels = random_problem(300, 10, acc=0.3, seed=3)
    hits5 = topk_hits(logits, labels, 5)
    rates = [hits5[labels == c].mean() for c in range(10)]
    value, present = per_class_accuracy(hits5, labels, 10)
    assert present == 10 and value == pytest.approx(np.mean(rates))
    ev = evaluate(logits, labels, bootstrap=None)
    assert ev.metrics["pc@5"].value == pytest.approx(np.mean(rates))
    assert ev.per_class["hits@5"].tolist() == [int(hits5[labels == c].sum()) for c in range(10)]


def test_score_kind_invariance():
    logits, labels = random_problem(200, 7, seed=4)
    probs, log_probs = softmax(logits, axis=1), log_softmax(logits, axis=1)
    ranks = true_class_rank(logits, labels)
    np.testing.assert_array_equal(true_class_rank(log_probs, labels), ranks)
    np.testing.assert_array_equal(true_class_rank(probs, labels), ranks)
    np.testing.assert_allclose(to_probabilities(logits, "logits"), probs, rtol=1e-12)
    np.testing.assert_allclose(to_probabilities(log_probs, "log_probs"), probs, rtol=1e-12)
    np.testing.assert_allclose(to_probabilities(probs, "probs"), probs, rtol=1e-12)
    results = [
        evaluate(s, labels, score_kind=kind, bootstrap=BootstrapConfig(resamples=50))
        for s, kind in ((logits, "logits"), (log_probs, "log_probs"), (probs, "probs"))
    ]
    for other in results[1:]:
        for key in METRIC_KEYS:
            a, b = results[0].metrics[key], other.metrics[key]
            assert b.value == pytest.approx(a.value, rel=1e-9, abs=1e-12)
            assert b.ci_low == pytest.approx(a.ci_low, rel=1e-9, abs=1e-12)


def test_float32_scores_accepted():
    logits, labels = random_problem(100, 6, seed=5)
    ev32 = evaluate(logits.astype(np.float32), labels, bootstrap=None)
    ev64 = evaluate(logits, labels, bootstrap=None)
    assert ev32.metrics["pi@1"].value == ev64.metrics["pi@1"].value
    assert ev32.metrics["nll"].value == pytest.approx(ev64.metrics["nll"].value, rel=1e-5)


# ------------------------------------------------------------------------------------------
# Bootstrap


def test_bootstrap_matches_naive_loop():
    """The vectorised engine equals calling the public functions on each resample."""
    n, k, b = 60, 5, 40
    logits, labels = random_problem(n, k, acc=0.5, seed=6)
    logits[:, 4] -= 1.0  # class 4 rarely predicted; some resamples lose classes
    config = BootstrapConfig(resamples=b, seed=11)
    ev = evaluate(logits, labels, bootstrap=config)
    idx = np.random.default_rng(11).integers(0, n, size=(b, n))  # documented resample scheme
    naive: dict[str, list[float]] = {key: [] for key in METRIC_KEYS}
    for rows in idx:
        s, y = logits[rows], labels[rows]
        h1, h5 = topk_hits(s, y, 1), topk_hits(s, y, 5)
        naive["pi@1"].append(per_instance_accuracy(h1))
        naive["pi@5"].append(per_instance_accuracy(h5))
        naive["pc@1"].append(per_class_accuracy(h1, y, k)[0])
        naive["pc@5"].append(per_class_accuracy(h5, y, k)[0])
        naive["pc_union@1"].append(union_class_accuracy(np.argmax(s, 1), y))
        naive["nll"].append(negative_log_likelihood(s, y))
        naive["ece"].append(expected_calibration_error(s, y))
    for key in METRIC_KEYS:
        low, high = np.quantile(naive[key], [0.025, 0.975])
        assert ev.metrics[key].ci_low == pytest.approx(low, rel=1e-9, abs=1e-12), key
        assert ev.metrics[key].ci_high == pytest.approx(high, rel=1e-9, abs=1e-12), key


def test_bootstrap_deterministic_and_chunk_independent(monkeypatch):
    logits, labels = random_problem(300, 10, seed=7)
    config = BootstrapConfig(resamples=200, seed=3)
    first = evaluate(logits, labels, bootstrap=config).to_dict()
    assert evaluate(logits, labels, bootstrap=config).to_dict() == first
    other = evaluate(logits, labels, bootstrap=BootstrapConfig(resamples=200, seed=4)).to_dict()
    assert other["metrics"]["pi@1"]["ci_low"] != first["metrics"]["pi@1"]["ci_low"] or \
        other["metrics"]["nll"]["ci_low"] != first["metrics"]["nll"]["ci_low"]
    monkeypatch.setattr(M, "_BLOCK_ELEMENTS", 300 * 7)  # 7 resamples per chunk
    assert evaluate(logits, labels, bootstrap=config).to_dict() == first


def test_interval_contains_point_and_shrinks_with_n():
    widths = []
    for n in (200, 5000):
        logits, labels = random_problem(n, 10, acc=0.7, seed=8)
        ev = evaluate(logits, labels, bootstrap=BootstrapConfig(resamples=500))
        for key, mv in ev.metrics.items():
            assert mv.ci_low <= mv.value <= mv.ci_high, key
        widths.append({key: mv.ci_high - mv.ci_low for key, mv in ev.metrics.items()})
    for key in METRIC_KEYS:
        assert widths[1][key] < 0.5 * widths[0][key], key  # ~ 1/sqrt(25) = 0.2 expected


def test_pi_interval_close_to_normal_approximation():
    # AUTSL scale (docs/evaluation.md#bootstrap-intervals): N = 3,742 at ~96 % -> half-width ~0.6
    # points.
    n = 3742
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 226, n)
    correct = rng.random(n) < 0.96
    logits = rng.normal(size=(n, 226))
    logits[np.arange(n), labels] = np.where(correct, 10.0, -10.0)
    ev = evaluate(logits, labels, bootstrap=BootstrapConfig(resamples=1000, seed=1))
    p = ev.metrics["pi@1"].value
    half_normal = 1.96 * math.sqrt(p * (1 - p) / n)
    half_boot = (ev.metrics["pi@1"].ci_high - ev.metrics["pi@1"].ci_low) / 2
    assert half_normal == pytest.approx(0.0063, abs=0.0007)
    assert half_boot == pytest.approx(half_normal, rel=0.15)


def test_pc_resamples_use_present_classes():
    # Singleton classes: class-stratified resampling would give zero width; ours must not.
    k = 50
    logits, labels = from_correctness(np.arange(k) % 2 == 0, k)
    assert (np.bincount(labels) == 1).all()
    ev = evaluate(logits, labels, bootstrap=BootstrapConfig(resamples=300))
    assert ev.metrics["pc@1"].value == pytest.approx(0.5)
    assert ev.metrics["pc@1"].ci_high - ev.metrics["pc@1"].ci_low > 0.1
    assert ev.classes_present == k


def test_bootstrap_speed_autsl_scale():
    # Guard against losing the vectorisation: B=1000 at N=3742, K=226 takes ~0.1 s here.
    logits, labels = random_problem(3742, 226, acc=0.9, seed=10)
    logits = logits.astype(np.float32)
    start = time.perf_counter()
    evaluate(logits, labels)
    assert time.perf_counter() - start < 5.0


# ------------------------------------------------------------------------------------------
# Paired comparison and multiple testing


def test_paired_identical_inputs():
    logits, labels = random_problem(300, 10, seed=12)
    pc = paired_bootstrap(logits, logits.copy(), labels, bootstrap=BootstrapConfig(resamples=200))
    assert (pc.mcnemar_b, pc.mcnemar_c, pc.mcnemar_p) == (0, 0, 1.0)
    for key in ("pi@1", "pc@1"):
        assert pc.delta[key] == MetricValue(0.0, 0.0, 0.0)
        assert pc.p_value[key] == 1.0
    json.dumps(pc.to_dict())


def test_paired_clearly_better_model():
    n, k = 800, 20
    logits_a, labels = random_problem(n, k, acc=0.9, seed=13)
    logits_b = logits_a.copy()
    logits_b[np.arange(n), labels] -= 2.5  # B is much worse on the same samples
    config = BootstrapConfig(resamples=500, seed=2)
    pc = paired_bootstrap(logits_a, logits_b, labels, bootstrap=config)
    ea = evaluate(logits_a, labels, bootstrap=None)
    eb = evaluate(logits_b, labels, bootstrap=None)
    for key in ("pi@1", "pc@1"):
        d = pc.delta[key]
        assert d.value == pytest.approx(ea.metrics[key].value - eb.metrics[key].value)
        assert 0 < d.ci_low <= d.value <= d.ci_high
        assert pc.p_value[key] == 0.0
    assert pc.mcnemar_b > 0 and pc.mcnemar_c == 0 and pc.mcnemar_p < 1e-10
    # Swapping A and B mirrors the deltas.
    swapped = paired_bootstrap(logits_b, logits_a, labels, bootstrap=config)
    assert swapped.delta["pi@1"].value == pytest.approx(-pc.delta["pi@1"].value)
    assert swapped.delta["pi@1"].ci_low == pytest.approx(-pc.delta["pi@1"].ci_high)
    assert (swapped.mcnemar_b, swapped.mcnemar_c) == (pc.mcnemar_c, pc.mcnemar_b)


def test_paired_bootstrap_uses_same_resamples_as_evaluate():
    logits_a, labels = random_problem(150, 6, acc=0.7, seed=14)
    logits_b, _ = random_problem(150, 6, acc=0.6, seed=15)
    config = BootstrapConfig(resamples=100, seed=5)
    pc = paired_bootstrap(logits_a, logits_b, labels, bootstrap=config)
    idx = np.random.default_rng(5).integers(0, 150, size=(100, 150))
    ha, hb = topk_hits(logits_a, labels, 1), topk_hits(logits_b, labels, 1)
    diffs = [ha[r].mean() - hb[r].mean() for r in idx]
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert pc.delta["pi@1"].ci_low == pytest.approx(low)
    assert pc.delta["pi@1"].ci_high == pytest.approx(high)
    p = min(1.0, 2 * min(np.mean(np.array(diffs) <= 0), np.mean(np.array(diffs) >= 0)))
    assert pc.p_value["pi@1"] == pytest.approx(p)


def test_mcnemar_hand_case():
    # A right / B wrong on 5 samples, the reverse on none, 3 concordant.
    right_a = np.array([1, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    right_b = np.array([0, 0, 0, 0, 0, 1, 0, 1], dtype=bool)
    logits_a, labels = from_correctness(right_a)
    logits_b, labels_b = from_correctness(right_b)
    assert (labels == labels_b).all()
    pc = paired_bootstrap(logits_a, logits_b, labels, bootstrap=BootstrapConfig(resamples=50))
    assert (pc.mcnemar_b, pc.mcnemar_c) == (5, 0)
    assert pc.mcnemar_p == pytest.approx(2 * 0.5**5)  # two-sided exact binomial: 0.0625
    assert pc.delta["pi@1"].value == pytest.approx(5 / 8)


def test_mcnemar_against_scipy():
    rng = np.random.default_rng(16)
    right_a, right_b = rng.random(200) < 0.7, rng.random(200) < 0.6
    logits_a, labels = from_correctness(right_a)
    logits_b, _ = from_correctness(right_b)
    pc = paired_bootstrap(logits_a, logits_b, labels, bootstrap=BootstrapConfig(resamples=20))
    b, c = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    assert (pc.mcnemar_b, pc.mcnemar_c) == (b, c)
    assert pc.mcnemar_p == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)


def test_holm_bonferroni():
    # Sorted 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2, x1 = 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.5
    assert holm_bonferroni([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm_bonferroni([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm_bonferroni([0.9, 0.9, 0.9]) == [1.0, 1.0, 1.0]  # capped
    assert holm_bonferroni([0.02]) == [0.02]
    assert holm_bonferroni([]) == []
    with pytest.raises(SlrbenchError, match="p_values"):
        holm_bonferroni([0.1, 1.5])


# ------------------------------------------------------------------------------------------
# Records


def test_to_dict_is_json_and_round_trips():
    logits, labels = random_problem(120, 8, seed=17)
    ev = evaluate(logits, labels, bootstrap=BootstrapConfig(resamples=50, seed=9))
    assert tuple(ev.metrics) == METRIC_KEYS
    assert set(METRIC_LABELS) == set(METRIC_KEYS)
    assert set(ev.per_class) == {"n", "hits@1", "hits@5"}
    assert all(v.shape == (8,) for v in ev.per_class.values())
    data = json.loads(json.dumps(ev.to_dict()))
    assert data["bootstrap"] == {"resamples": 50, "seed": 9, "confidence": 0.95,
                                 "method": "percentile"}
    assert set(data["chance"]) == {"chance@1", "chance@5"}
    back = Evaluation.from_dict(data)
    assert back.metrics == ev.metrics and back.bootstrap == ev.bootstrap
    assert back.to_dict() == ev.to_dict()
    mv = MetricValue(0.5, 0.4, 0.6)
    assert MetricValue.from_dict(mv.to_dict()) == mv
    assert MetricValue.from_dict({"value": 0.5}) == MetricValue(0.5, None, None)
    assert M.metric_label("pi@10") == "P-I@10" and M.metric_label("pc@1") == "P-C@1"


# ------------------------------------------------------------------------------------------
# Errors


def assert_one_line_error(fn, *args, match: str, **kwargs) -> str:
    with pytest.raises(SlrbenchError, match=match) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "expected" in message
    return message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_rejected(bad):
    scores = np.zeros((3, 4))
    scores[1, 2] = bad
    message = assert_one_line_error(evaluate, scores, [0, 1, 2], match="scores")
    assert "row 1, column 2" in message
    assert_one_line_error(true_class_rank, scores, [0, 1, 2], match="non-finite")
    assert_one_line_error(paired_bootstrap, np.zeros((3, 4)), scores, [0, 1, 2], match="scores_b")


def test_shape_errors():
    assert_one_line_error(evaluate, np.zeros(4), [0], match="scores: found shape")
    assert_one_line_error(evaluate, np.zeros((2, 2, 2)), [0, 1], match="scores: found shape")
    assert_one_line_error(evaluate, np.zeros((3, 4)), [0, 1], match="labels: found 2 entries")
    assert_one_line_error(evaluate, np.zeros((3, 4)), [[0, 1, 2]], match="labels: found shape")
    assert_one_line_error(evaluate, np.zeros((3, 4)), [0, 1, 2], num_classes=5,
                          match="num_classes=5")
    assert_one_line_error(paired_bootstrap, np.zeros((3, 4)), np.zeros((3, 5)), [0, 1, 2],
                    match="scores_b")
    assert_one_line_error(per_class_accuracy, [True, False], [0], 3, match="labels")


def test_empty_input_rejected():
    assert_one_line_error(evaluate, np.zeros((0, 4)), np.zeros(0, dtype=int), match="0 rows")
    assert_one_line_error(evaluate, np.zeros((2, 0)), [0, 0], match="0 columns")
    assert_one_line_error(per_instance_accuracy, [], match="hits")
    assert_one_line_error(union_class_accuracy, [], [], match="pred")


def test_label_errors():
    assert_one_line_error(evaluate, np.zeros((3, 4)), [0, 4, 1], match=r"labels: .*\[0, 4\)")
    assert_one_line_error(evaluate, np.zeros((3, 4)), [0, -1, 1], match="labels")
    assert_one_line_error(evaluate, np.zeros((3, 4)), [0.0, 1.0, 2.0], match="labels: found dtype")
    assert_one_line_error(per_class_accuracy, [True, False], [0, 3], 3, match="labels")


def test_k_and_option_errors():
    scores, labels = np.zeros((3, 4)), [0, 1, 2]
    assert_one_line_error(topk_hits, scores, labels, 5, match="k: found 5, expected k <= K = 4")
    assert_one_line_error(topk_hits, scores, labels, 0, match="k: found 0")
    assert_one_line_error(evaluate, scores, labels, ks=(0,), match="ks")
    assert_one_line_error(evaluate, scores, labels, score_kind="softmax", match="score_kind")
    assert_one_line_error(BootstrapConfig, resamples=0, match="bootstrap.resamples")
    assert_one_line_error(BootstrapConfig, confidence=1.0, match="bootstrap.confidence")
    assert_one_line_error(BootstrapConfig, method="bca", match="bootstrap.method")
    assert_one_line_error(expected_calibration_error, scores, labels, n_bins=0, match="n_bins")


def test_mislabelled_score_kind_rejected():
    logits, labels = random_problem(20, 5, seed=18)
    assert_one_line_error(evaluate, logits, labels, score_kind="probs", match="score_kind='probs'")
    assert_one_line_error(evaluate, logits, labels, score_kind="log_probs", match="log_probs")
    assert_one_line_error(to_probabilities, logits, "probs", match="probs")
    assert_one_line_error(per_instance_accuracy, [0, 2], match="0/1")
