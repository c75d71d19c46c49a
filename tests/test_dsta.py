"""DSTA-SLR: network, data pipeline, adapter and a short learning check (docs/methods/dsta.md)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from slrbench.datasets.layouts import get_layout
from slrbench.datasets.registry import load_dataset
from slrbench.datasets.skeleton import prepare_stream_arrays
from slrbench.datasets.streams import bones_inplace
from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.gcn import count_trainable_parameters
from slrbench.methods.dsta import DSTA, PRESETS, DSTAConfig, build_dsta
from slrbench.methods.dsta_adapter import (
    DSTAAdapter,
    dsta_stream,
    random_subset_indices,
    uniform_indices,
)
from slrbench.methods.registry import get_method
from slrbench.store import RecordStore
from slrbench.training.loop import TrainConfig, Trainer, seed_everything
from slrbench.training.runner import RunRequest, run

STREAMS = ("j", "b", "jm", "bm")


@pytest.fixture(scope="module")
def tiny_synthsign():
    return load_dataset("synthsign-tiny")


# ------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize(
    ("k", "expected", "rounded"),
    [
        (2000, 8_191_286, "8.19"),
        (226, 7_281_224, "7.28"),
        (500, 7_421_786, "7.42"),
        (100, 7_216_586, "7.22"),
    ],
)
def test_paper_parameter_counts(k: int, expected: int, rounded: str) -> None:
    # docs/methods/dsta.md#presets: exactly 8,191,286 trainable at K = 2000; 7.28 / 7.42 / 7.22 M at
    # K = 226 / 500 / 100 (the classifier adds 513 per class).
    n = count_trainable_parameters(build_dsta("paper", k))
    assert n == expected
    assert f"{n / 1e6:.2f}" == rounded


def test_paper_structure_counts() -> None:
    model = build_dsta("paper", 2000)
    # Per stage 0.175 / 0.369 / 1.367 / 5.257 M in the state dict (upstream also stores one
    # frozen 27 x 27 summed adjacency per stage: 2,916 entries in total, here a buffer).
    per_stage = [count_trainable_parameters(s) + 27 * 27 for s in model.stages]
    assert [round(n / 1e6, 3) for n in per_stage] == [0.175, 0.369, 1.367, 5.257]
    assert count_trainable_parameters(model.fc) == 1_026_000
    assert sum(per_stage) + 1_026_000 + 162 == 8_194_202  # + input BN = state-dict total
    assert len(model.state_dict()) + 4 == 369  # upstream keys incl. the 4 frozen adjacencies


def test_tiny_parameter_counts() -> None:
    # The upstream timing model quotes 0.157 M / 0.522 M from a timing model; the faithful blocks
    # (depthwise + pointwise residual as upstream) give slightly more.
    assert count_trainable_parameters(build_dsta("tiny", 20)) == 160_029
    assert count_trainable_parameters(build_dsta("tiny-wide", 20)) == 532_329


def test_model_init_and_config_errors() -> None:
    model = build_dsta("tiny", 20)
    spatial = model.stages[0].spatial
    assert spatial.edge_gate.item() == 0.0  # edge branch starts switched off
    assert spatial.static_graph.shape == (4, 4, 27, 27)
    torch.testing.assert_close(spatial.static_graph, torch.full_like(spatial.static_graph, 1 / 27))
    assert torch.all(spatial.head_scales == 1)
    assert [s.drops for s in model.stages] == [False, True, True]
    with pytest.raises(SlrbenchError, match="heads"):
        DSTAConfig(widths=(12, 24), strides=(1, 2), heads=8)
    with pytest.raises(SlrbenchError, match="dsta input"):
        model(torch.zeros(2, 2, 8, 27, 1))
    with pytest.raises(SlrbenchError, match="preset"):
        build_dsta("huge", 20)


def test_forward_shapes_train_and_eval() -> None:
    model = DSTA(7, "samslr_27", PRESETS["tiny"])
    x = torch.randn(3, 3, 32, 27, 1)
    model.train()
    assert model(x, 0.9).shape == (3, 7)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (3, 7)
        assert model(torch.randn(2, 3, 40, 27, 1)).shape == (2, 7)  # any T at test


# ----------------------------------------------------------------------------- streams
def test_inplace_bones_by_hand() -> None:
    # Chain 0 -> 1 -> 2 -> 3 plus 1 -> 4, one channel; upstream converts in edge order, in place.
    j = np.array([[1.0], [3.0], [7.0], [15.0], [4.0]])
    out = bones_inplace(j, [(0, 1), (1, 2), (2, 3), (1, 4)])
    b1 = 3 - 1  # correct: parent untouched yet
    b2 = 7 - b1  # parent already a bone
    b3 = 15 - b2
    b4 = 4 - b1
    np.testing.assert_array_equal(out[:, 0], [1.0, b1, b2, b3, b4])
    np.testing.assert_array_equal(j[:, 0], [1, 3, 7, 15, 4])  # input untouched


def test_inplace_bones_samslr27_nodes() -> None:
    # docs/methods/dsta.md#input-pipeline: exactly these nodes differ from true bones; node 0 stays
    # raw.
    lay = get_layout("samslr_27")
    rng = np.random.default_rng(0)
    j = rng.normal(size=(27, 3)) * 100
    out = bones_inplace(j, lay.edges)
    parent = {c: p for p, c in lay.edges}
    true = j.copy()
    for c, p in parent.items():
        true[c] = j[c] - j[p]
    wrong = sorted(int(v) for v in np.nonzero(~np.isclose(out, true).all(axis=1))[0])
    assert wrong == [3, 4, 5, 6, 7, 10, 12, 14, 16, 17, 20, 22, 24, 26]
    np.testing.assert_allclose(out[0], j[0])
    np.testing.assert_allclose(out[3], j[3] - (j[1] - j[0]))  # elbow - (shoulder - nose)
    np.testing.assert_allclose(out[7], j[7] - (j[5] - (j[3] - (j[1] - j[0]))))


def test_dsta_stream_modes(tiny_synthsign) -> None:
    pose = tiny_synthsign.pose("val")
    joints = prepare_stream_arrays(pose.data, pose.lengths, pose.layout, "samslr_27", "j", 40)
    for stream in STREAMS:  # correct mode = the shared offline definitions
        expected = prepare_stream_arrays(
            pose.data, pose.lengths, pose.layout, "samslr_27", stream, 40
        )
        np.testing.assert_allclose(dsta_stream(joints, stream, "samslr_27"), expected, atol=1e-4)
    lay = get_layout("samslr_27")
    bug = dsta_stream(joints, "b", "samslr_27", "upstream_inplace")
    x = joints[..., 0].transpose(0, 2, 3, 1)  # (N, T, V, C)
    expected = bones_inplace(x, lay.edges)
    np.testing.assert_allclose(bug[..., 0].transpose(0, 2, 3, 1), expected, atol=1e-5)
    bm = dsta_stream(joints, "bm", "samslr_27", "upstream_inplace")
    np.testing.assert_allclose(bm[:, :, :-1], bug[:, :, 1:] - bug[:, :, :-1], atol=1e-3)
    assert not bm[:, :, -1].any()
    with pytest.raises(SlrbenchError, match="bone_mode"):
        dsta_stream(joints, "b", "samslr_27", "inplace")


def test_temporal_sampling() -> None:
    rng = np.random.default_rng(0)
    idx = random_subset_indices(40, 32, rng)
    assert len(idx) == 32 and len(set(idx.tolist())) == 32 and np.all(np.diff(idx) > 0)
    short = random_subset_indices(20, 32, rng)  # T < frames: sorted, each index at most twice
    assert np.all(np.diff(short) >= 0) and np.bincount(short).max() <= 2
    np.testing.assert_array_equal(uniform_indices(150, 120)[:6], [0, 1, 2, 3, 5, 6])
    np.testing.assert_array_equal(uniform_indices(40, 40), np.arange(40))


# -------------------------------------------------------------------------------- adapter
def test_config_decisions_and_errors(tiny_synthsign) -> None:
    adapter = get_method("dsta")
    spec = tiny_synthsign.spec
    config = adapter.resolve_config("tiny", spec, "b", {})
    assert config["data"]["bone_mode"] == "correct" and "dsta.bone=correct" in config["decisions"]
    assert config["data"]["augment"]["shift_px"] == 0.0  # no shift for bone streams upstream
    assert adapter.resolve_config("tiny", spec, "jm", {})["data"]["augment"]["shift_px"] > 0
    bug = adapter.resolve_config("tiny", spec, "b", {"data.bone_mode": "upstream_inplace"})
    assert "dsta.bone=upstream_inplace" in bug["decisions"]
    with pytest.raises(SlrbenchError, match=re.escape("data.bone_mode: found 'buggy'")):
        adapter.resolve_config("tiny", spec, "b", {"data.bone_mode": "buggy"})
    with pytest.raises(SlrbenchError, match="--streams"):
        adapter.check_streams(["rgb"])
    assert adapter.check_streams(["j"]) == ("j",)
    fusion = adapter.spec.fusion
    assert fusion is not None and fusion.test_tuned and fusion.score_space == "logits"
    assert fusion.weights_for("wlasl2000") == {"j": 1.7, "b": 0.8, "jm": 0.5, "bm": 0.5}
    assert fusion.weights_for("autsl") == {"j": 1.8, "b": 0.5, "jm": 0.1, "bm": 0.7}
    assert fusion.weights_for("synthsign-tiny") == fusion.weights["default"]
    assert all(set(w) == set(STREAMS) for w in fusion.weights.values())


@pytest.mark.parametrize("stream", STREAMS)
def test_stream_items_and_model_shapes(tiny_synthsign, stream: str) -> None:
    adapter = DSTAAdapter()
    config = adapter.resolve_config("tiny", tiny_synthsign.spec, stream, {})
    data = adapter.stream_data(tiny_synthsign, config, seed=0)
    x, label, index = data.train[5]
    frames = config["data"]["frames"]
    assert frames == 16  # tiny: 16 sampled of 20 stored (every other frame)
    assert x.shape == (3, frames, 27, 1) and x.dtype == torch.float32 and index == 5
    assert isinstance(label, int)
    data.train.set_epoch(3)
    again = data.train[5][0]
    data.train.set_epoch(3)
    torch.testing.assert_close(data.train[5][0], again)  # per-(seed, epoch, index) draws
    assert data.test[0][0].shape == (3, frames, 27, 1)
    model = adapter.build_model(config, tiny_synthsign.spec.num_classes)
    batch = torch.stack([data.train[i][0] for i in range(4)])
    assert adapter.forward(model, batch, 2, config).shape == (4, 20)
    model.eval()
    with torch.no_grad():
        assert adapter.forward(model, batch, -1, config).shape == (4, 20)


def test_deterministic_cpu_training(tiny_synthsign, tmp_path: Path) -> None:
    adapter = DSTAAdapter()
    config = adapter.resolve_config("tiny", tiny_synthsign.spec, "j", {"train.epochs": 1})

    def train_once(workdir: Path) -> np.ndarray:
        seed_everything(3)
        data = adapter.stream_data(tiny_synthsign, config, seed=3)
        model = adapter.build_model(config, tiny_synthsign.spec.num_classes)
        trainer = Trainer(
            TrainConfig.from_dict(config["train"]),
            torch.device("cpu"),
            seed=3,
            # Epoch 0 has keep_prob 1 (no drops): train with epoch 5's rate to cover the drops.
            forward=lambda m, x, epoch: adapter.forward(
                m, x, -1 if epoch < 0 else max(epoch, 5), config
            ),
            progress=False,
        )
        trainer.fit(model, Subset(data.train, range(32)), Subset(data.val, range(16)), workdir)
        return trainer.predict(model, Subset(data.test, range(16)))[0]

    first = train_once(tmp_path / "a")
    second = train_once(tmp_path / "b")
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_tiny_learns_on_synthsign(tiny_synthsign, tmp_path: Path) -> None:
    request = RunRequest(
        method=get_method("dsta"),
        dataset=tiny_synthsign,
        preset="tiny",
        streams=("j",),
        seed=0,
        overrides={"train.epochs": 6},  # half the tiny recipe: enough to beat 3x chance
        bootstrap=None,
        progress=False,
    )
    (outcome,) = run(request, RecordStore(tmp_path / "results"))
    chance = 1 / tiny_synthsign.spec.num_classes
    assert outcome.metrics["test"]["pi@1"]["value"] >= 3 * chance
