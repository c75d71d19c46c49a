"""The linear baseline: pooled features with the stated invariances, C chosen on val, ordinary
records through the shared runner, well above chance on SynthSign-tiny."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slrbench.datasets.base import PoseArrays
from slrbench.datasets.layouts import COCO_WHOLEBODY_133
from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.methods.linear_features import (
    LEFT_HAND,
    RIGHT_HAND,
    FeatureConfig,
    feature_dim,
    feature_names,
    pooled_features,
)
from slrbench.methods.registry import get_method
from slrbench.metrics import topk_hits
from slrbench.store import RecordStore
from slrbench.training.runner import RunRequest, run

V = 133
T = 12


def _signer(seed: int, t: int = T) -> np.ndarray:
    """(T, 133, 3) random but plausible: shoulders apart, every point observed (score 1)."""
    rng = np.random.default_rng(seed)
    xy = rng.normal(0.0, 20.0, size=(t, V, 2)) + 250.0
    xy[:, 5] = [200.0, 200.0]  # left shoulder
    xy[:, 6] = [300.0, 200.0]  # right shoulder
    return np.concatenate([xy, np.ones((t, V, 1))], axis=-1).astype(np.float32)


def _pose(*samples: np.ndarray, lengths: list[int] | None = None) -> PoseArrays:
    t_max = max(s.shape[0] for s in samples)
    data = np.zeros((len(samples), t_max, V, 3), dtype=np.float32)
    for i, sample in enumerate(samples):
        data[i, : sample.shape[0]] = sample
    return PoseArrays(data, np.asarray(lengths or [s.shape[0] for s in samples]),
                      "coco_wholebody_133", (512, 512))


def _features(*samples: np.ndarray, **config: object) -> np.ndarray:
    return pooled_features(_pose(*samples), FeatureConfig(**config))  # type: ignore[arg-type]


def test_columns_are_named_and_counted() -> None:
    config = FeatureConfig(segments=4)
    assert len(feature_names(config)) == feature_dim(config) == 98 * (5 + 4) + 3
    assert len(set(feature_names(config))) == feature_dim(config)


def test_body_frame_removes_position_and_size() -> None:
    sample = _signer(0)
    moved = sample.copy()
    moved[..., :2] = sample[..., :2] * 1.7 + np.array([40.0, -25.0])  # farther away, elsewhere
    np.testing.assert_allclose(_features(sample), _features(moved), rtol=1e-5, atol=1e-6)


def test_hand_shape_is_relative_to_its_wrist() -> None:
    sample = _signer(1)
    moved = sample.copy()
    moved[:, LEFT_HAND, :2] += np.array([30.0, 10.0])  # the whole left hand shifted, shape kept
    # The 21 hand points enter only relative to the hand root; location is the body wrist's.
    np.testing.assert_allclose(_features(sample), _features(moved), rtol=1e-5, atol=1e-6)
    bent = sample.copy()
    bent[:, LEFT_HAND[8], :2] += np.array([15.0, 0.0])  # one fingertip moved: a new shape
    changed = np.flatnonzero(~np.isclose(_features(sample), _features(bent)).ravel())
    names = feature_names(FeatureConfig())
    tip = COCO_WHOLEBODY_133.names[LEFT_HAND[8]]
    assert changed.size and all(f"{tip}-wrist" in names[i] for i in changed)


def test_left_dominant_signer_is_mirrored_onto_the_right() -> None:
    right = _signer(2)
    right[:, 10, 0] += np.linspace(0, 80, T)  # the right wrist travels: right-dominant
    mirror = np.array(COCO_WHOLEBODY_133.mirror)
    left = right[:, mirror].copy()
    left[..., 0] = 500.0 - left[..., 0]  # the same signing, seen in a mirror
    np.testing.assert_allclose(_features(left), _features(right), rtol=1e-5, atol=1e-5)
    as_recorded = {"dominant_hand": "as_recorded"}
    assert not np.allclose(_features(left, **as_recorded), _features(right, **as_recorded))


def test_missing_points_and_padding_never_enter_a_statistic() -> None:
    sample = _signer(3)
    padded = _pose(sample[:8], lengths=[8])
    padded.data[0, 8:] = 999.0  # garbage after the clip's length must be ignored
    longer = PoseArrays(np.concatenate([padded.data, np.full((1, 4, V, 3), 999.0,
                                                             dtype=np.float32)], axis=1),
                        padded.lengths, padded.layout, padded.frame_size)
    np.testing.assert_array_equal(pooled_features(padded, FeatureConfig()),
                                  pooled_features(longer, FeatureConfig()))
    unseen = sample.copy()
    unseen[:, RIGHT_HAND, 2] = 0.0  # the right hand never detected
    unseen[:, RIGHT_HAND, :2] = np.nan
    features = _features(unseen)
    assert np.isfinite(features).all()
    names = feature_names(FeatureConfig())
    assert features[0, names.index("observed:right_hand")] == 0.0
    assert features[0, names.index("observed:left_hand")] == 1.0


def test_bad_feature_and_fit_fields_are_refused() -> None:
    with pytest.raises(SlrbenchError, match=r"features\.segments: found 0"):
        FeatureConfig(segments=0)
    adapter = get_method("linear")
    spec = load_dataset("synthsign-tiny").spec
    with pytest.raises(SlrbenchError, match=r"fit.c_grid: found \[\]"):
        adapter.resolve_config("tiny", spec, "pooled", {"fit.c_grid": []})
    with pytest.raises(SlrbenchError, match=r"fit\.max_iter: found 0"):
        adapter.resolve_config("tiny", spec, "pooled", {"fit.max_iter": 0})
    with pytest.raises(SlrbenchError, match="unknown field 'C'"):
        adapter.resolve_config("tiny", spec, "pooled", {"fit.C": 1.0})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    store = RecordStore(tmp_path_factory.mktemp("linear"))
    run(RunRequest(method=get_method("linear"), dataset=load_dataset("synthsign-tiny"),
                   preset="tiny", streams=("pooled",), device=torch.device("cpu"),
                   bootstrap=None, progress=False), store)
    return store


def test_linear_learns_well_above_chance_and_stores_a_pair(fitted: RecordStore) -> None:
    rows = fitted.find(method="linear")
    assert sorted(r["split"] for r in rows) == ["test", "val"]
    test = fitted.load_checked(fitted.latest(split="test", method="linear")["run_id"])
    val = fitted.load_checked(fitted.latest(split="val", method="linear")["run_id"])
    assert test.meta["commit_group"] == val.meta["commit_group"]  # committed together
    chance = 1 / test.num_classes
    assert test.metrics["pi@1"]["value"] > 8 * chance  # measured: 0.844 (chance 0.05)
    assert test.meta["selection_split"] == "val" and not test.meta["test_tuned"]
    timings = test.meta["timings"]  # prediction is timed from the pose arrays to the logits
    assert timings["predict_s"] > 0 and 0 < timings["train_s"] < 120
    assert timings["epochs"] is None and test.meta["selected_epoch"] is None


def test_c_is_the_best_on_val_and_the_checkpoint_reproduces_the_scores(
        fitted: RecordStore) -> None:
    test = fitted.load(fitted.latest(split="test", method="linear")["run_id"])
    val = fitted.load(fitted.latest(split="val", method="linear")["run_id"])
    chosen = test.meta["selected"]
    tried = chosen["tried"]
    assert len(tried) == 5 and chosen["val_pi@1"] == max(t["val_pi@1"] for t in tried)
    first_best = next(t for t in tried if t["val_pi@1"] == chosen["val_pi@1"])
    assert chosen["C"] == first_best["C"]  # ties go to the smaller C
    assert chosen["val_pi@1"] == pytest.approx(float(topk_hits(val.scores, val.labels, 1).mean()))

    state = np.load(fitted.root / "checkpoints" / test.meta["checkpoint"], allow_pickle=False)
    dataset = load_dataset("synthsign-tiny")
    x = pooled_features(dataset.pose("test"), FeatureConfig.from_dict(
        test.meta["config"]["features"]))
    z = (x - state["feature_mean"]) / state["feature_scale"]
    logits = z @ state["coef"].T + state["intercept"]
    np.testing.assert_allclose(logits[:, state["classes"]], test.scores[:, state["classes"]],
                               rtol=1e-6, atol=1e-6)


def test_epochs_is_refused_for_a_method_without_epochs(cli) -> None:
    code, _, err = cli("run", "--method", "linear", "--dataset", "synthsign-tiny",
                       "--epochs", "3")
    assert code == 2 and "fitted by a solver" in err and len(err.strip().splitlines()) == 1
