"""The fusion protocol: fit on val only, refuse without val, align by id, strategies, records."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_fusion_fixtures import STREAMS, K, labels_for, make_pair, make_record, make_split

from slrbench.errors import SlrbenchError
from slrbench.fusion import strategies as fusion_mod
from slrbench.fusion.engine import to_space
from slrbench.fusion.pipeline import default_options, fuse_records
from slrbench.fusion.records import stack_records
from slrbench.fusion.strategies import FusionOptions, StreamStack, fit_protocol
from slrbench.marks import record_flags
from slrbench.store import RecordStore
from slrbench.store.records import validate_record


class LabelTrap(StreamStack):
    """A stack whose labels raise on any read: stands in for the test split while fitting."""

    reads = 0

    @property  # type: ignore[override]
    def labels(self) -> np.ndarray:
        LabelTrap.reads += 1
        raise AssertionError("test labels were read")

    @labels.setter
    def labels(self, value: np.ndarray) -> None:
        self.__dict__["_hidden"] = value


def stacks(strengths=(1.6, 1.4, 1.0, 0.8), **kw) -> tuple[StreamStack, StreamStack]:
    val, test = make_pair(strengths=strengths, **kw)
    return stack_records(val, "logits", "val"), stack_records(test, "logits", "test")


def trap(stack: StreamStack) -> LabelTrap:
    return LabelTrap(stack.streams, stack.scores, stack.labels, stack.sample_ids, stack.space,
                     stack.split)


# ---------------------------------------------------------------------------- leakage


@pytest.mark.parametrize("strategy", ["grid", "bayes", "hier", "stack", "mean", "fixed"])
def test_fitting_never_reads_test_labels(strategy: str) -> None:
    val, test = stacks()
    guarded = trap(test)
    with pytest.raises(AssertionError):
        _ = guarded.labels  # the instrument is live
    LabelTrap.reads = 0
    options = default_options("slgcn", "synthsign-tiny", strategy=strategy, trials=15,
                              groups={"joint": ("j", "jm"), "bone": ("b", "bm")})
    result = fit_protocol(options, val, guarded)
    assert LabelTrap.reads == 0
    assert result.tuned_on == ("val" if strategy in fusion_mod.FITTED else None)
    assert result.test_fused.shape == test.scores.shape[1:]
    # Without val, test tuning is the only way to fit on test, and it does read labels.
    if strategy in fusion_mod.FITTED:
        allowed = FusionOptions(**{**options.__dict__, "allow_test_tuning": True})
        with pytest.raises(AssertionError):
            fit_protocol(allowed, None, guarded)


def test_refusal_without_val_records() -> None:
    _, test = make_pair(with_val=False)
    options = default_options("slgcn", "synthsign-tiny", strategy="bayes", trials=5)
    with pytest.raises(SlrbenchError, match=r"no val records.*--allow-test-tuning") as info:
        fuse_records(None, test, options)
    assert "\n" not in str(info.value)
    # Fixed and mean weights fit nothing, so they need no val split.
    mean = fuse_records(None, test, default_options("slgcn", "synthsign-tiny", strategy="mean"),
                        bootstrap=None)
    assert set(mean.records) == {"test"} and mean.result.tuned_on is None


def test_allow_test_tuning_marks_records(tmp_path) -> None:
    _, test = make_pair(with_val=False)
    options = default_options("slgcn", "synthsign-tiny", strategy="grid", allow_test_tuning=True)
    outcome = fuse_records(None, test, options, store=RecordStore(tmp_path), bootstrap=None)
    meta = outcome.records["test"].meta
    assert meta["test_tuned"] is True and meta["fusion"]["tuned_on"] == "test"
    assert any("tuned on the test split" in r for r in meta["leaky_reasons"])


def record_fitted_ids(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The sample ids of every stack `fit` is given from now on, in call order."""
    seen: list[set[str]] = []
    real_fit = fusion_mod.fit

    def spy(options, stack):  # type: ignore[no-untyped-def]
        seen.append(set(stack.sample_ids.tolist()))
        return real_fit(options, stack)

    monkeypatch.setattr(fusion_mod, "fit", spy)
    return seen


def test_crossfit_scores_each_fold_without_its_labels(monkeypatch) -> None:
    _, test = stacks()
    seen = record_fitted_ids(monkeypatch)
    options = default_options("slgcn", "synthsign-tiny", strategy="bayes", trials=10,
                              crossfit=4, seed=3)
    result = fit_protocol(options, None, test)
    assert result.tuned_on == "test-crossfit-sample" and len(result.folds) == 4 == len(seen)
    covered = set()
    for (rows, _), fitted_on in zip(result.folds, seen):
        held = set(test.sample_ids[rows].tolist())
        assert not held & fitted_on  # no label of the scored fold was used
        assert held | fitted_on == set(test.sample_ids.tolist())
        covered |= held
    assert covered == set(test.sample_ids.tolist())
    assert result.crossfit == {"k": 4, "seed": 3, "folds_by": "sample"}
    again = fit_protocol(options, None, test)
    np.testing.assert_array_equal(again.fold_of, result.fold_of)  # seeded
    with pytest.raises(SlrbenchError, match="--crossfit only"):
        fit_protocol(options, test, test)


def test_crossfit_holds_out_whole_signers(monkeypatch) -> None:
    _, test = stacks()
    signers = np.array([f"s{i % 6}" for i in range(test.n)])
    seen = record_fitted_ids(monkeypatch)
    options = FusionOptions("grid", crossfit=3, seed=1)
    result = fit_protocol(options, None, test, signers)
    assert result.tuned_on == "test-crossfit-signer"
    assert result.crossfit == {"k": 3, "seed": 1, "folds_by": "signer"}
    signer_of = dict(zip(test.sample_ids.tolist(), signers.tolist()))
    for (rows, _), fitted_on in zip(result.folds, seen):
        held = set(signers[rows].tolist())
        assert len(held) == 2  # 6 signers in 3 folds, each signer in one fold only
        assert not held & {signer_of[i] for i in fitted_on}
    with pytest.raises(SlrbenchError, match="K=7 folds for 6 test signers"):
        fit_protocol(replace(options, crossfit=7), None, test, signers)
    with pytest.raises(SlrbenchError, match="--crossfit with --allow-test-tuning"):
        fit_protocol(replace(options, allow_test_tuning=True), None, test, signers)


def test_crossfit_record_is_not_test_tuned(tmp_path) -> None:
    _, test = make_pair(with_val=False)
    options = default_options("slgcn", "synthsign-tiny", strategy="grid", crossfit=3)
    outcome = fuse_records(None, test, options, store=RecordStore(tmp_path), ablate=("loo",),
                           bootstrap=None)
    record = outcome.records["test"]
    assert record.meta["test_tuned"] is False
    assert record.meta["fusion"]["tuned_on"] == "test-crossfit-sample"
    assert record_flags(record.meta, "test") == "⊙"  # its own mark: neither † nor clean
    assert len(record.meta["fusion"]["crossfit"]["folds"]) == 3
    assert sorted(set(record.extras["crossfit_fold"].tolist())) == [0, 1, 2]
    assert len(outcome.tables["loo"].frame) == len(STREAMS) + 1
    with pytest.raises(SlrbenchError, match="greedy"):
        fuse_records(None, test, options, ablate=("greedy",))


# ---------------------------------------------------------------------------- alignment


def test_id_mismatch_names_the_ids() -> None:
    _, test = make_pair()
    ids = test[2].sample_ids.copy()
    ids[ids == "t0003"] = "t9999"
    broken = make_record("test", "jm", ids, test[2].labels, test[2].scores)
    with pytest.raises(SlrbenchError) as info:
        fuse_records(None, [test[0], test[1], broken, test[3]],
                     default_options("slgcn", "synthsign-tiny", strategy="mean"))
    message = str(info.value)
    assert "t0003" in message and "t9999" in message and "80 ids" in message


def test_alignment_is_by_id_not_position() -> None:
    """The helper stores every stream in its own row order; fusing must match a fusion of the
    same data put in one order by hand."""
    _, test = make_pair(with_val=False)
    stack = stack_records(test, "logits", "test")
    order = np.argsort(stack.sample_ids)
    by_hand = []
    for record in test:
        position = {sid: i for i, sid in enumerate(record.sample_ids)}
        by_hand.append(record.scores[[position[s] for s in stack.sample_ids[order]]])
    w = np.array([1.0, 0.9, 0.5, 0.5])
    expected = np.einsum("s,snk->nk", w, np.stack(by_hand).astype(np.float64)) / w.sum()
    outcome = fuse_records(None, test, default_options("slgcn", "synthsign-tiny"),
                           bootstrap=None)
    fused = outcome.records["test"]
    np.testing.assert_allclose(fused.scores[order], expected, rtol=1e-5, atol=1e-6)


def test_label_and_checkpoint_mismatch() -> None:
    _, test = make_pair()
    flipped = make_record("test", "b", test[1].sample_ids, (test[1].labels + 1) % K,
                          test[1].scores)
    with pytest.raises(SlrbenchError, match="labels differ"):
        fuse_records(None, [test[0], flipped], default_options("slgcn", "synthsign-tiny",
                                                               strategy="mean"))
    other = make_split("val", 80, (1.0,) * 4, checkpoint_sha256="e" * 64)
    with pytest.raises(SlrbenchError, match="checkpoint_sha256"):
        fuse_records(other, test, default_options("slgcn", "synthsign-tiny", strategy="grid"))


# ---------------------------------------------------------------------------- strategies


@pytest.mark.parametrize("space", ["logits", "probs"])
def test_fused_record_equals_numpy_reference(space: str) -> None:
    val, test = make_pair()
    options = default_options("slgcn", "synthsign-tiny", strategy="bayes", trials=20, space=space)
    outcome = fuse_records(val, test, options, bootstrap=None)
    record = outcome.records["test"]
    validate_record(record, "fused")
    weights = outcome.result.fitted.weights
    stack = stack_records(test, "logits", "test")  # raw logits, converted below
    reference = sum(w * to_space(s, "logits", space, "x").astype(np.float64)
                    for w, s in zip(weights, stack.scores)) / weights.sum()
    np.testing.assert_allclose(record.scores, reference, rtol=1e-5, atol=1e-6)
    assert record.score_kind == ("probs" if space == "probs" else "logits")
    true = reference[np.arange(stack.n), stack.labels]
    top1 = ((reference >= true[:, None]).sum(axis=1) == 1).mean()
    assert record.metrics["pi@1"]["value"] == pytest.approx(top1)
    assert record.meta["fusion"]["n_trials"] == 20
    assert record.meta["fusion"]["sampler_seed"] == 0
    assert record.meta["fusion"]["library"]["optuna"]


def test_fixed_uses_recipe_and_published_flag() -> None:
    val, test = make_pair()
    outcome = fuse_records(val, test, default_options("slgcn", "synthsign-tiny"), bootstrap=None)
    fitted = outcome.result.fitted
    assert fitted.weight_table() == {"j": 1.0, "b": 0.9, "jm": 0.5, "bm": 0.5}
    assert outcome.records["test"].meta["test_tuned"] is False  # SL-GCN weights: hand-set, clean
    assert outcome.records["val"].meta["fusion"]["pair"]["test"] == \
        outcome.records["test"].run_id


def test_fixed_weights_tuned_on_test_upstream_mark_the_record() -> None:
    # DSTA-SLR's published weights were grid-searched on the reported split: † although
    # slrbench itself tuned nothing.
    val, test = make_pair()
    outcome = fuse_records(val, test, default_options("dsta", "wlasl2000", strategy="fixed"),
                           bootstrap=None)
    assert outcome.result.fitted.weight_table() == {"j": 1.7, "b": 0.8, "jm": 0.5, "bm": 0.5}
    assert outcome.records["test"].meta["test_tuned"] is True


def test_grid_and_bayes_do_not_lose_to_mean_on_val() -> None:
    val, test = stacks(strengths=(2.0, 0.3, 1.2, 0.2))
    mean = fit_protocol(default_options("slgcn", "x", strategy="mean"), val, test)
    for strategy in ("grid", "bayes"):
        fitted = fit_protocol(default_options("slgcn", "x", strategy=strategy, trials=40), val,
                              test).fitted
        assert fitted.details["objective_pi@1"] >= _top1(mean.val_fused, val.labels)


def _top1(scores: np.ndarray, labels: np.ndarray) -> float:
    true = scores[np.arange(labels.size), labels]
    return float(((scores >= true[:, None]).sum(axis=1) == 1).mean())


def adversarial_logits(labels: np.ndarray, stream: int, rng: np.random.Generator) -> np.ndarray:
    """Streams 0 and 3 vote for the true class (+5); streams 1 and 2 for class (y + 1) % K
    (+8), the same wrong class, so any stream subset needs small weights on 1 and 2."""
    logits = 0.3 * rng.standard_normal((labels.size, K)).astype(np.float32)
    target = labels if stream in (0, 3) else (labels + 1) % K
    logits[np.arange(labels.size), target] += 5.0 if stream in (0, 3) else 8.0
    return logits


@pytest.mark.parametrize("level_search", ["grid", "bayes"])
def test_hier_recovers_the_known_optimum(level_search: str) -> None:
    streams = ("A_good", "A_bad", "B_bad", "B_good")
    val = make_split("val", 60, (0,) * 4, streams, logits_fn=adversarial_logits)
    test = make_split("test", 60, (0,) * 4, streams, logits_fn=adversarial_logits)
    vs, ts = stack_records(val, "logits", "val"), stack_records(test, "logits", "test")
    mean = fit_protocol(FusionOptions("mean"), vs, ts)
    assert _top1(mean.val_fused, vs.labels) == 0.0  # 5 + 5 < 8 + 8
    options = FusionOptions("hier", level_search=level_search, trials=40,
                            grid=dict.fromkeys(streams, (0.0, 0.5, 1.0)))
    result = fit_protocol(options, vs, ts)  # groups from the A_ / B_ prefixes
    assert _top1(result.val_fused, vs.labels) == 1.0
    assert _top1(result.test_fused, ts.labels) == 1.0
    w = result.fitted.weight_table()
    assert w["A_good"] * 5 > w["A_bad"] * 8 and w["B_good"] * 5 > w["B_bad"] * 8
    levels = result.fitted.details["levels"]
    assert [lv["level"] for lv in levels] == [1, 1, 2]
    assert {lv.get("group") for lv in levels[:2]} == {"A", "B"}


def test_hier_reuses_unchanged_level_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leave-one-out row of hier searches only the changed group and the top level again;
    the looked-up groups give exactly what a fresh search gives."""
    vs, ts = stacks()
    options = FusionOptions("hier", trials=12, groups={"joint": ("j", "jm"), "bone": ("b", "bm")})
    searched: list[tuple[str, ...]] = []
    search_bayes = fusion_mod._search_bayes

    def counting(options, stack, engine, enqueue=()):  # type: ignore[no-untyped-def]
        searched.append(stack.streams)
        return search_bayes(options, stack, engine, enqueue)

    monkeypatch.setattr(fusion_mod, "_search_bayes", counting)
    fusion_mod._LEVEL_CACHE.clear()
    full = fit_protocol(options, vs, ts).fitted
    assert sorted(searched) == [("b", "bm"), ("j", "jm"), ("joint", "bone")]
    searched.clear()
    without_jm = replace(options, groups={"joint": ("j",), "bone": ("b", "bm")})
    row = fit_protocol(without_jm, vs.select(("j", "b", "bm")), ts.select(("j", "b", "bm")))
    assert searched == [("joint", "bone")]  # bone looked up; a one-stream group needs no search
    fusion_mod._LEVEL_CACHE.clear()
    fresh = fit_protocol(options, vs, ts).fitted
    np.testing.assert_array_equal(fresh.weights, full.weights)
    assert fresh.details == full.details
    assert row.fitted.details["group_weights"]["bone"] == full.details["group_weights"]["bone"]


def test_stack_beats_chance() -> None:
    val, test = stacks(strengths=(1.2, 1.0, 0.8, 0.6), n_val=160, n_test=120)
    result = fit_protocol(FusionOptions("stack", seed=1), val, test)
    assert result.score_kind == "logits" and result.fitted.weights is None
    accuracy = _top1(result.test_fused, test.labels)
    assert accuracy > 1 / K + 0.25
    assert result.fitted.details["C"] in fusion_mod.STACK_CS


def test_subset_weights_restrict_and_renormalise() -> None:
    val, test = stacks()
    options = FusionOptions("fixed", recipe=default_options("slgcn", "x").recipe)
    fitted = fit_protocol(options, val, test).fitted
    masks = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], dtype=bool)
    np.testing.assert_allclose(fitted.subset_weights(masks), [[1.0, 0.9, 0, 0], [0, 0, 0, 0.5]])
    hier = fusion_mod.FittedFusion(
        "hier", STREAMS, "logits", np.array([0.3, 0.2, 0.3, 0.2]),
        {"group_weights": {"x": [3.0, 3.0], "y": [2.0, 2.0]}, "level_weights": {"x": 0.6,
                                                                                "y": 0.4}},
        groups={"x": ("j", "jm"), "y": ("b", "bm")})
    # Dropping jm leaves j with its whole group's level-2 weight.
    np.testing.assert_allclose(hier.subset_weights(np.array([[1, 1, 0, 1]], bool)),
                               [[0.6, 0.2, 0.0, 0.2]])


def test_labels_helper_covers_every_class() -> None:
    assert set(labels_for(40).tolist()) == set(range(K))
