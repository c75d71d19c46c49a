"""LGF-SLR reconstruction (docs/methods/lgf.md): streams, configs, hand normalisation, parameter
counts, output shapes, determinism and a short learning check on tiny SynthSign."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from slrbench.datasets.base import Dataset, DatasetSpec
from slrbench.datasets.layouts import get_layout
from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.gcn import count_trainable_parameters
from slrbench.methods.lgf_adapter import (
    PARTS,
    SPEC,
    STREAMS,
    HandNorm,
    LGFAdapter,
    normalise_hands,
    palm_nodes,
    split_stream,
)
from slrbench.methods.registry import get_method
from slrbench.store import RecordStore
from slrbench.training.loop import TrainConfig, Trainer, seed_everything
from slrbench.training.runner import RunRequest, run

K = 20  # synthsign-tiny classes


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return load_dataset("synthsign-tiny")


@pytest.fixture(scope="module")
def adapter() -> LGFAdapter:
    method = get_method("lgf")
    assert isinstance(method, LGFAdapter)
    return method


# ------------------------------------------------------------------------------ spec, config
def test_streams_and_fusion_groups() -> None:
    assert len(STREAMS) == 12 and STREAMS[0] == "body_j" and STREAMS[-1] == "rhand_bm"
    assert split_stream("lhand_jm") == ("lhand", "jm")
    for bad in ("j", "hand_j", "body_x", "body"):
        with pytest.raises(SlrbenchError):
            split_stream(bad)
    fusion = SPEC.fusion
    assert fusion is not None and fusion.strategy == "hier" and fusion.score_space == "logits"
    assert fusion.groups is not None and tuple(fusion.groups) == PARTS
    assert sorted(s for g in fusion.groups.values() for s in g) == sorted(STREAMS)
    weights = fusion.weights_for("autsl")
    assert weights["rhand_j"] == 1.0 and weights["rhand_b"] == 0.9 and weights["body_bm"] == 0.5
    assert all(weights[p] == 1.0 for p in PARTS)
    assert SPEC.reconstruction and not fusion.test_tuned
    assert {r.value for r in SPEC.published} == {95.93, 52.74, 98.38}


def test_check_streams_subset(adapter: LGFAdapter) -> None:
    assert adapter.check_streams(["body_j", "lhand_j"]) == ("body_j", "lhand_j")
    assert adapter.check_streams(None) == STREAMS
    with pytest.raises(SlrbenchError, match="unknown stream 'j'"):
        adapter.check_streams(["j"])


def test_config_decisions_and_overrides(adapter: LGFAdapter, tiny: Dataset) -> None:
    spec = tiny.spec
    body = adapter.resolve_config("tiny", spec, "body_b", {"data.hand.subset": "hand21"})
    assert body["method"] == "lgf" and body["stream"] == "body_b"
    assert body["data"]["layout"] == "samslr_27" and body["data"]["stream"] == "b"
    assert "hand" not in body["data"]  # hand overrides do not touch body streams
    assert "lgf.global_input=samslr_27" in body["decisions"]
    assert body["data"]["augment"]["flip_prob"] == 0.5  # SL-GCN feeder unchanged

    hand = adapter.resolve_config("tiny", spec, "lhand_bm", {"train.epochs": 3})
    assert hand["data"]["layout"] == "hand10_left" and hand["data"]["stream"] == "bm"
    assert hand["data"]["hand"] == HandNorm().to_dict() and hand["train"]["epochs"] == 3
    augment = hand["data"]["augment"]
    assert augment["flip_prob"] == 0.0 and augment["center"] is False
    for decision in ("lgf.hand_subset=hand10", "lgf.hand_flip=off", "lgf.hand_center=root_mean",
                     "lgf.hand_scale=none", "lgf.stc_spatial_kernel=9"):
        assert decision in hand["decisions"]
    assert not any(d.startswith("slgcn.flip") for d in hand["decisions"])

    h21 = adapter.resolve_config("tiny", spec, "rhand_j", {"data.hand.subset": "hand21"})
    assert h21["data"]["layout"] == "hand21_right"
    assert "lgf.hand_subset=hand21" in h21["decisions"]
    assert "lgf.stc_spatial_kernel=21" in h21["decisions"]
    assert augment["shift_px"] == body["data"]["augment"]["shift_px"]  # pixels
    palm = adapter.resolve_config("tiny", spec, "rhand_j", {"data.hand.scale": "palm"})
    assert palm["data"]["augment"]["shift_px"] == 0.1  # palm units
    assert "lgf.hand_shift=0.1_palm" in palm["decisions"]

    with pytest.raises(SlrbenchError, match=re.escape("data.hand.subset")):
        adapter.resolve_config("tiny", spec, "rhand_j", {"data.hand.subset": "hand5"})
    with pytest.raises(SlrbenchError, match=re.escape("data.hand.subset instead")):
        adapter.resolve_config("tiny", spec, "rhand_j", {"data.layout": "hand21_right"})
    with pytest.raises(SlrbenchError, match="hand21 needs"):
        adapter.resolve_config("tiny", _with_layout(spec, "samslr_27"), "rhand_j",
                               {"data.hand.subset": "hand21"})
    with pytest.raises(SlrbenchError, match="unknown field"):
        adapter.resolve_config("tiny", spec, "rhand_j", {"data.hand.colour": 1})
    with pytest.raises(SlrbenchError, match="expected 0"):
        adapter.resolve_config("tiny", spec, "lhand_j", {"data.augment.flip_prob": 0.5})


def _with_layout(spec: DatasetSpec, layout: str) -> DatasetSpec:
    return replace(spec, layout=layout)


def test_describe_presets_rows(adapter: LGFAdapter) -> None:
    rows = adapter.describe_presets()
    assert [r["preset"] for r in rows] == ["tiny"] * 3 + ["paper"] * 3
    assert "3,838,584 (K=226)" in rows[3]["params per model"]


# ---------------------------------------------------------------------------------- counts
@pytest.mark.parametrize(
    ("preset", "layout", "k", "expected"),
    [
        # Paper scale: body = upstream SL-GCN exactly (docs/methods/slgcn.md#presets); hands differ
        # only in the adjacency tensors and STC spatial kernels (about 3.5 M at V = 10,
        # docs/methods/lgf.md#presets).
        ("paper", "samslr_27", 226, 3_838_584),
        ("paper", "hand10_left", 226, 3_511_218),
        ("paper", "hand21_left", 226, 3_691_860),
        ("paper", "samslr_27", 2000, 4_294_502),
        ("paper", "hand10_right", 2000, 3_967_136),
        ("paper", "hand21_right", 2000, 4_147_778),
        # Tiny preset, docs/methods/lgf.md#presets: 0.210 M / 0.146 M / 0.181 M at K = 20.
        ("tiny", "samslr_27", 20, 210_206),
        ("tiny", "hand10_left", 20, 146_264),
        ("tiny", "hand21_left", 20, 181_370),
    ],
)
def test_parameter_counts(
    adapter: LGFAdapter, tiny: Dataset, preset: str, layout: str, k: int, expected: int
) -> None:
    part = "body" if layout == "samslr_27" else ("lhand" if layout.endswith("left") else "rhand")
    subset = layout.split("_")[0] if part != "body" else "hand10"
    config = adapter.resolve_config(preset, tiny.spec, f"{part}_j", {"data.hand.subset": subset})
    assert config["data"]["layout"] == layout
    assert count_trainable_parameters(adapter.build_model(config, k)) == expected


# ---------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("subset", ["hand10", "hand21"])
def test_every_stream_shapes(adapter: LGFAdapter, tiny: Dataset, subset: str) -> None:
    for stream in STREAMS:
        part, _ = split_stream(stream)
        config = adapter.resolve_config("tiny", tiny.spec, stream, {"data.hand.subset": subset})
        v = get_layout(config["data"]["layout"]).num_nodes
        assert v == {"body": 27, "hand10": 10, "hand21": 21}[subset if part != "body" else part]
        data = adapter.stream_data(tiny, config, seed=0)
        x, _, _ = data.train[0]
        assert x.shape == (3, 16, v, 1)  # tiny train crop: 16 of 20 stored frames
        test = torch.stack([data.test[i][0] for i in range(4)])
        assert test.shape == (4, 3, 20, v, 1) and torch.isfinite(test).all()
        model = adapter.build_model(config, K).eval()
        with torch.no_grad():
            assert adapter.forward(model, test, -1, config).shape == (4, K), stream


# ----------------------------------------------------------------------- hand normalisation
def _hand_example() -> tuple[np.ndarray, np.ndarray]:
    """Two hand10 samples, T = 5. Sample 0: an upright hand whose palm points are 2 px from
    the root in frames 0-1 and 4 px in frame 3, root at (10, 20), (12, 20), -, (14, 26);
    frame 2 lost (zeros), frame 4 padding. Sample 1: never detected."""
    joints = np.zeros((2, 5, 10, 3), np.float32)
    palm = list(palm_nodes("hand10_left"))
    for t, (root, size) in {0: ((10, 20), 2.0), 1: ((12, 20), 2.0), 3: ((14, 26), 4.0)}.items():
        joints[0, t, :, :2] = root
        joints[0, t, palm, 1] -= size  # MCPs straight above the root
        joints[0, t, 1, :2] += (3.0, 1.0)  # thumb tip: something off the palm
        joints[0, t, :, 2] = 0.8
    return joints, np.array([4, 5])


def test_palm_nodes() -> None:
    assert palm_nodes("hand10_left") == (2, 4, 6, 8)
    assert palm_nodes("hand21_right") == (5, 9, 13, 17)


def test_hand_normalisation_by_hand() -> None:
    joints, lengths = _hand_example()
    out = normalise_hands(joints, lengths, "hand10_left", HandNorm(scale="palm"))
    centre = np.array([12.0, 22.0])  # root mean over frames 0, 1, 3 (not the lost frame)
    size = 2.0  # median palm size over detected frames: median(2, 2, 4)
    for t in (0, 1, 3):
        expected = (joints[0, t, :, :2] - centre) / size
        np.testing.assert_allclose(out[0, t, :, :2], expected, rtol=1e-6)
    np.testing.assert_allclose(out[0, 3, 0, :2], [1.0, 2.0])
    assert not out[0, [2, 4], :, :2].any()  # lost and padding frames sit at the centre
    np.testing.assert_array_equal(out[..., 2], joints[..., 2])  # scores untouched
    assert not out[1].any()  # never detected: stays zero, no NaN

    per_frame = normalise_hands(
        joints, lengths, "hand10_left", HandNorm(center="root_frame", scale="none")
    )
    assert not per_frame[0, :, 0, :2].any()  # root at the origin in every frame
    np.testing.assert_allclose(per_frame[0, 3, 2, :2], [0.0, -4.0])
    np.testing.assert_allclose(per_frame[0, 0, 1, :2], [3.0, 1.0])

    unscaled = normalise_hands(joints, lengths, "hand10_left", HandNorm())  # default: centre only
    np.testing.assert_allclose(unscaled[0, 1, 0, :2], [0.0, -2.0])

    strict = normalise_hands(joints, lengths, "hand10_left", HandNorm(scale="palm", min_score=0.9))
    assert not strict[..., :2].any()  # every frame below the score threshold counts as lost

    with pytest.raises(SlrbenchError):
        normalise_hands(joints, lengths, "hand21_left", HandNorm())
    with pytest.raises(SlrbenchError, match=re.escape("data.hand.center")):
        HandNorm(center="nose")


def test_hand_arrays_are_normalised_before_the_streams(adapter: LGFAdapter, tiny: Dataset) -> None:
    """Bones come from normalised joints: with palm scaling their lengths are in palm units."""
    config = adapter.resolve_config("tiny", tiny.spec, "rhand_b", {"data.hand.scale": "palm"})
    bones = adapter.stream_arrays(tiny, config["data"], "val")  # (N, C, T, V, 1)
    palm = np.linalg.norm(bones[:, :2, :, list(palm_nodes("hand10_right")), 0], axis=1)
    detected = palm.max(axis=-1) > 0
    assert 0.5 < np.median(palm.mean(-1)[detected]) < 2.0


# ------------------------------------------------------------------------------ determinism
def _short_logits(adapter: LGFAdapter, tiny: Dataset, stream: str, workdir: Path) -> np.ndarray:
    config = adapter.resolve_config("tiny", tiny.spec, stream, {"train.epochs": 2})
    seed_everything(0)
    data = adapter.stream_data(tiny, config, seed=0)
    model = adapter.build_model(config, K)
    trainer = Trainer(
        config=TrainConfig.from_dict(config["train"]),
        device=torch.device("cpu"),
        forward=lambda m, x, epoch: adapter.forward(m, x, epoch, config),
        on_epoch_start=lambda m, epoch: adapter.on_epoch_start(m, epoch, config),
        progress=False,
    )
    # Two epochs: epoch 1 releases the adjacency and applies the drops (keep_prob 0.9).
    trainer.fit(model, Subset(data.train, range(32)), Subset(data.val, range(16)), workdir)
    logits, _ = trainer.predict(model, Subset(data.test, range(16)))
    return logits


@pytest.mark.parametrize("stream", ["body_bm", "lhand_j"])
def test_deterministic_cpu_runs(
    adapter: LGFAdapter, tiny: Dataset, tmp_path: Path, stream: str
) -> None:
    first = _short_logits(adapter, tiny, stream, tmp_path / "a")
    second = _short_logits(adapter, tiny, stream, tmp_path / "b")
    np.testing.assert_array_equal(first, second)


# --------------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_tiny_preset_learns(adapter: LGFAdapter, tiny: Dataset, tmp_path: Path) -> None:
    """One body and one hand stream, shortened to 6 epochs, beat 3x chance on test."""
    store = RecordStore(tmp_path)
    request = RunRequest(
        method=adapter,
        dataset=tiny,
        preset="tiny",
        streams=("body_j", "rhand_j"),
        overrides={"train.epochs": 6},
        bootstrap=None,
        progress=False,
    )
    outcomes = run(request, store)
    chance = 1.0 / K
    for outcome in outcomes:
        record = store.load(outcome.run_ids["test"])
        assert record.meta["reconstruction"] is True
        assert "lgf.backbone=slgcn" in record.meta["decisions"]
        assert outcome.metrics["test"]["pi@1"]["value"] >= 3 * chance, outcome.stream
