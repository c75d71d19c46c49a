"""The multi-head, multi-stage method contract (docs/architecture.md#multi-head-methods) on a
toy method: one training unit gives one record per head, stages run in order and each starts
from the weights the previous one selected, each stage resumes bit-identically, a stage's loss
is the adapter's own, and a modality the prediction does not name is never read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional
from torch.utils.data import Dataset as TorchDataset

from slrbench.config import apply_overrides
from slrbench.datasets.base import SPLITS, DatasetSpec, PoseArrays
from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodAdapter, MethodSpec, Stage, StreamData
from slrbench.methods.skeleton_adapter import train_section
from slrbench.store import RecordStore
from slrbench.training import RunRequest, run

CLASSES = ("a", "b", "c")
SIZES = {"train": 48, "val": 18, "test": 18}


class ToyData:
    """Two modalities: "x" tells the class apart, "y" too (a training-only signal, like a
    wrist IMU that is missing at test time)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.arrays: dict[str, dict[str, np.ndarray]] = {}
        for split, n in SIZES.items():
            labels = np.arange(n) % len(CLASSES)
            centres = np.eye(len(CLASSES), 4)[labels] * 2.0
            self.arrays[split] = {
                "labels": labels.astype(np.int64),
                "x": (centres + rng.normal(0, 1, (n, 4))).astype(np.float32),
                "y": (centres + rng.normal(0, 1, (n, 4))).astype(np.float32),
            }
        self.spec = DatasetSpec(
            name="toy-multihead", version="1", title="toy", classes=CLASSES,
            splits={s: tuple(f"{s}{i:03d}" for i in range(n)) for s, n in SIZES.items()},
            modalities=("x", "y"), layout=None, frame_size=None)

    def labels(self, split: str) -> np.ndarray:
        return self.arrays[split]["labels"]

    def signers(self, split: str) -> np.ndarray:
        return np.array(["s0"] * SIZES[split])

    def pose(self, split: str) -> PoseArrays:
        raise AssertionError("the toy method reads no pose")


class ToyFeeder(TorchDataset):
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.modalities: tuple[str, ...] = ("x", "y")
        self.reads = {"x": 0, "y": 0}

    def set_modalities(self, names: tuple[str, ...]) -> None:
        self.modalities = tuple(names)

    def __len__(self) -> int:
        return len(self.arrays["labels"])

    def __getitem__(self, i: int) -> tuple[dict[str, Tensor], int, int]:
        for name in self.modalities:
            self.reads[name] += 1
        return ({name: torch.from_numpy(self.arrays[name][i]) for name in self.modalities},
                int(self.arrays["labels"][i]), i)


class ToyNet(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.x, self.x2, self.y = nn.Linear(4, k), nn.Linear(4, k), nn.Linear(4, k)

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        out = {"x": self.x(x), "x2": self.x2(torch.tanh(x))}
        if y is not None:
            out["y"] = self.y(y)
        return out


class ToyAdapter(MethodAdapter):
    spec = MethodSpec(
        name="toyheads", title="toy", paper="-", upstream="-", modalities=("x", "y"),
        streams=("x", "x2", "x_pre"), units={"xy": ("x", "x2", "x_pre")}, presets=("tiny",),
        default_preset="tiny", adapter_version="1", summary="toy", divergences=("toy",))
    prediction_reads: tuple[str, ...] = ("x",)
    fail_at: tuple[str, int] | None = None  # (stage, epoch): raise there (a crash)

    def __init__(self) -> None:
        self.feeders: dict[str, ToyFeeder] = {}

    def resolve_config(self, preset: str, spec: DatasetSpec, stream: str,
                       overrides: dict[str, Any]) -> dict[str, Any]:
        train = train_section({"epochs": 3, "batch_size": 8, "optimizer": "adam", "lr": 0.05,
                               "schedule": "constant"})
        config = {"method": self.spec.name, "preset": preset, "stream": stream, "train": train,
                  "pretrain": {"epochs": 2}, "decisions": []}
        return apply_overrides(config, overrides)

    def build_model(self, config: dict[str, Any], num_classes: int) -> nn.Module:
        return ToyNet(num_classes)

    def stream_data(self, dataset: Any, config: dict[str, Any], seed: int) -> StreamData:
        self.feeders = {s: ToyFeeder(dataset.arrays[s]) for s in SPLITS}
        return StreamData(train=self.feeders["train"], val=self.feeders["val"],
                          test=self.feeders["test"])

    def stages(self, config: dict[str, Any]) -> tuple[Stage, ...]:
        return (Stage("x-only", {**config["train"], **config["pretrain"]}, ("x",), "x",
                      stores={"x": "x_pre"}),
                Stage("joint", config["train"], ("x", "y"), "x2"))

    def prediction_modalities(self, config: dict[str, Any]) -> tuple[str, ...]:
        return self.prediction_reads

    def training_loss(self, model: nn.Module, inputs: Any, targets: Tensor, epoch: int,
                      config: dict[str, Any], stage: Stage) -> tuple[Tensor, Tensor]:
        if self.fail_at == (stage.name, epoch):
            raise KeyboardInterrupt
        out = model(**inputs)
        if stage.name == "x-only":
            return functional.cross_entropy(out["x"], targets), out["x"]
        loss = sum(functional.cross_entropy(v, targets) for v in out.values())
        assert isinstance(loss, Tensor)
        return loss, out["x2"]

    def predict_heads(self, model: nn.Module, inputs: Any, config: dict[str, Any],
                      stage: Stage | None = None) -> dict[str, Tensor]:
        out = model(x=inputs["x"])
        return out if stage is None or stage.name == "joint" else {"x": out["x"]}


def _run(store: Path, adapter: ToyAdapter, **settings: Any) -> list[Any]:
    request = RunRequest(method=adapter, dataset=ToyData(), preset="tiny",  # type: ignore[arg-type]
                         streams=("x",), progress=False, bootstrap=None, **settings)
    return run(request, RecordStore(store), jobs=1, threads=1)


def test_one_training_gives_a_record_per_head_in_one_group(tmp_path: Path) -> None:
    adapter = ToyAdapter()
    outcomes = _run(tmp_path / "r", adapter)
    assert [(o.stream, o.status) for o in outcomes] == [
        ("x", "trained"), ("x2", "trained"), ("x_pre", "trained")]
    store = RecordStore(tmp_path / "r")
    rows = store.find(method="toyheads")
    assert sorted((r["stream"], r["split"]) for r in rows) == [
        ("x", "test"), ("x", "val"), ("x2", "test"), ("x2", "val"), ("x_pre", "test"),
        ("x_pre", "val")]
    records = [store.load(r["run_id"]) for r in rows]
    assert {r.meta["unit"] for r in records} == {"xy"}
    groups = {r.meta["commit_group"]["id"] for r in records}  # committed together
    assert len(groups) == 1 and len(records[0].meta["commit_group"]["members"]) == 6
    final = {r.meta["checkpoint_sha256"] for r in records if r.stream != "x_pre"}
    assert len(final) == 1  # one network
    stages = records[0].meta["stages"]
    assert [(s["name"], s["epochs"], s["select_on"], s["modalities"]) for s in stages] == [
        ("x-only", 2, "x", ["x"]), ("joint", 3, "x2", ["x", "y"])]
    assert records[0].meta["timings"]["epochs"] == 5
    for record in records:  # the toy task is easy: every head learns
        assert record.metrics["pi@1"]["value"] > 0.6, (record.stream, record.split)
    again = _run(tmp_path / "r", ToyAdapter())
    assert [o.status for o in again] == ["skipped"] * 3


def test_a_stage_stores_the_streams_of_its_own_selected_weights(tmp_path: Path) -> None:
    """`Stage.stores`: the record names the stage's checkpoint, which gives its scores."""
    _run(tmp_path / "r", ToyAdapter())
    store = RecordStore(tmp_path / "r")
    (row,) = store.find(method="toyheads", stream="x_pre", split="test")
    record = store.load(row["run_id"])
    (final,) = store.find(method="toyheads", stream="x", split="test")
    assert record.meta["checkpoint_sha256"] != final["checkpoint_sha256"]
    assert ".x-only_" in record.meta["checkpoint"]
    net = ToyNet(len(CLASSES))
    state = torch.load(tmp_path / "r" / "checkpoints" / record.meta["checkpoint"],
                       weights_only=True)["model"]
    net.load_state_dict(state)
    with torch.no_grad():
        logits = net(x=torch.from_numpy(ToyData().arrays["test"]["x"]))["x"].numpy()
    np.testing.assert_allclose(record.scores, logits, rtol=1e-6, atol=1e-6)
    assert not np.allclose(record.scores, store.load(final["run_id"]).scores)


def test_a_modality_the_prediction_does_not_name_is_never_read(tmp_path: Path) -> None:
    adapter = ToyAdapter()
    _run(tmp_path / "r", adapter)
    assert adapter.feeders["train"].reads["y"] > 0  # the joint stage trains on it
    # Test is read twice, for the first stage's own stream and for the final heads.
    assert adapter.feeders["test"].reads == {"x": 2 * SIZES["test"], "y": 0}
    # The check can fail: a prediction that names "y" reads it.
    reading = ToyAdapter()
    reading.prediction_reads = ("x", "y")
    _run(tmp_path / "r2", reading)
    assert reading.feeders["test"].reads["y"] == SIZES["test"]  # the final prediction


def test_each_stage_starts_from_the_weights_the_previous_one_selected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slrbench.training import runner

    selected: list[dict[str, Tensor]] = []
    fit = runner.Trainer.fit

    def keep_selected(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = fit(self, *args, **kwargs)
        selected.append({k: v.clone() for k, v in result.best_state.items()})
        return result

    monkeypatch.setattr(runner.Trainer, "fit", keep_selected)
    adapter = ToyAdapter()
    at_start: dict[str, Tensor] = {}
    initial: dict[str, Tensor] = {}
    original = adapter.training_loss

    def spy(model: nn.Module, inputs: Any, targets: Tensor, epoch: int,
            config: dict[str, Any], stage: Stage) -> tuple[Tensor, Tensor]:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if not initial:
            initial.update(state)
        if stage.name == "joint" and not at_start:
            at_start.update(state)
        return original(model, inputs, targets, epoch, config, stage)

    adapter.training_loss = spy  # type: ignore[method-assign]
    _run(tmp_path / "r", adapter)
    first_stage = selected[0]
    assert at_start and all(torch.equal(at_start[k], first_stage[k]) for k in first_stage)
    assert not torch.equal(first_stage["x.weight"], initial["x.weight"])  # stage 1 trained x
    assert torch.equal(first_stage["x2.weight"], initial["x2.weight"])  # and nothing else


def test_an_interrupted_stage_resumes_bit_identically(tmp_path: Path) -> None:
    clean = _run(tmp_path / "clean", ToyAdapter())
    crashing = ToyAdapter()
    crashing.fail_at = ("joint", 1)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "r", crashing)
    with pytest.raises(SlrbenchError, match=r"stopped after epoch 1/3 of stage 'joint'; pass "
                                            "--resume"):
        _run(tmp_path / "r", ToyAdapter())
    resumed = _run(tmp_path / "r", ToyAdapter(), resume=True)
    assert [o.status for o in resumed] == ["resumed"] * 3
    for a, b in zip(clean, resumed, strict=True):
        for split in ("val", "test"):
            left = RecordStore(tmp_path / "clean").load(a.run_ids[split]).scores
            right = RecordStore(tmp_path / "r").load(b.run_ids[split]).scores
            np.testing.assert_array_equal(left, right)


def test_heads_the_adapter_does_not_predict_are_an_error(tmp_path: Path) -> None:
    adapter = ToyAdapter()
    original = adapter.predict_heads

    def without_x2(model: nn.Module, inputs: Any, config: dict[str, Any],
                   stage: Stage | None = None) -> dict[str, Tensor]:
        heads = original(model, inputs, config, stage)
        return heads if stage is not None else {"x": heads["x"]}

    adapter.predict_heads = without_x2  # type: ignore[method-assign]
    with pytest.raises(SlrbenchError, match=r"toyheads/xy: predicted heads \['x'\]; expected "
                                            r"\['x', 'x2'\]"):
        _run(tmp_path / "r", adapter)


def test_after_step_runs_after_every_optimiser_step_of_every_stage(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []

    class Counting(ToyAdapter):
        def after_step(self, model: nn.Module, epoch: int, config: dict[str, Any],
                       stage: Stage) -> None:
            calls.append((stage.name, epoch))

    _run(tmp_path / "r", Counting())
    steps = -(-SIZES["train"] // 8)  # batches per epoch
    assert len(calls) == steps * (2 + 3)
    assert calls[0] == ("x-only", 0) and calls[-1] == ("joint", 2)
