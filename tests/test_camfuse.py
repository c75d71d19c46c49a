"""CAMFuse (reconstruction) as a method: its unit, heads and stages, the errors it gives, and
(slow) that the tiny preset learns on SynthSign-tiny with every head and that `slrbench fuse`
fuses the three heads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slrbench.datasets.base import Dataset
from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.methods.camfuse_adapter import HEADS, SINGLE, UNIT, CAMFuseAdapter
from slrbench.methods.video_adapter import check_video
from slrbench.store import RecordStore
from slrbench.training import RunRequest, StreamOutcome, run


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return load_dataset("synthsign-tiny")


def test_one_unit_three_heads_three_stages(tiny: Dataset) -> None:
    adapter = CAMFuseAdapter()
    assert adapter.spec.training_units(("pose",)) == (UNIT,)
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {})
    assert adapter.heads(config) == HEADS + SINGLE == adapter.spec.streams
    stages = adapter.stages(config)
    assert [(s.name, s.modalities, s.select_on, s.train["epochs"], s.stores) for s in stages] == [
        ("rgb", ("rgb",), "rgb", 10, {"rgb": "rgb_only"}),
        ("pose", ("heatmap",), "pose", 10, {"pose": "pose_only"}),
        ("joint", ("rgb", "heatmap"), "fused", 10, {})]
    assert adapter.prediction_modalities(config) == ("rgb", "heatmap")
    short = adapter.resolve_config("tiny", tiny.spec, UNIT, {"train.epochs": 2})
    assert [s.train["epochs"] for s in adapter.stages(short)] == [2, 2, 2]
    alone = adapter.resolve_config("tiny", tiny.spec, UNIT, {"train.epochs": 2,
                                                             "pretrain.epochs": 3})
    assert [s.train["epochs"] for s in adapter.stages(alone)] == [3, 3, 2]
    no_fused = adapter.resolve_config("tiny", tiny.spec, UNIT, {"model.fused_head": False})
    assert adapter.heads(no_fused) == ("rgb", "pose", *SINGLE)
    assert adapter.stages(no_fused)[-1].select_on == "rgb"


def test_paper_pretraining_stretches_the_fine_tuning_schedule(tiny: Dataset) -> None:
    adapter = CAMFuseAdapter()
    config = adapter.resolve_config("paper", tiny.spec, UNIT, {})
    rgb, _, joint = adapter.stages(config)
    assert joint.train["milestones"] == [12, 16] and joint.train["epochs"] == 20
    assert rgb.train["epochs"] == 180 and rgb.train["milestones"] == [108, 144]
    assert config["data"]["zeroed_joints"] == list(range(11, 23))
    assert config["test_protocol"]["clips"] == 10


def test_errors_name_what_was_found(tiny: Dataset) -> None:
    adapter = CAMFuseAdapter()
    with pytest.raises(SlrbenchError, match="camfuse: training unit 'rgb'; expected 'rgbpose'"):
        adapter.resolve_config("tiny", tiny.spec, "rgb", {})

    class PoseOnly:
        spec = tiny.spec.__class__(**{**tiny.spec.__dict__, "modalities": ("pose",)})

    with pytest.raises(SlrbenchError, match=r"modalities pose; method 'camfuse' expected RGB "
                                            "frames with keypoints"):
        check_video(PoseOnly(), "camfuse")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ learning


@pytest.fixture(scope="module")
def trained(tiny: Dataset, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, list[StreamOutcome]]:
    root = tmp_path_factory.mktemp("camfuse") / "results"
    # One stream asked: the whole unit trains. 7 of the preset's 10 epochs per stage keep the
    # suite's budget; on seed 0 every checked head then still reaches 30-39 % (chance 5 %).
    request = RunRequest(method=CAMFuseAdapter(), dataset=tiny, preset="tiny", streams=("rgb",),
                         seed=0, progress=False, overrides={"train.epochs": 7})
    return root, run(request, RecordStore(root), jobs=1, threads=1)


def _test_pi(outcome: StreamOutcome) -> dict[str, Any]:
    return outcome.metrics["test"]["pi@1"]


@pytest.mark.slow
def test_tiny_learns_with_every_head(trained: tuple[Path, list[StreamOutcome]],
                                     tiny: Dataset) -> None:
    root, outcomes = trained
    by_head = {o.stream: _test_pi(o) for o in outcomes}
    assert list(by_head) == [*HEADS, *SINGLE]
    chance = 1 / tiny.spec.num_classes
    for head in (*HEADS, "pose_only"):
        assert by_head[head]["value"] >= 3 * chance, (head, by_head[head])
    # The RGB pathway alone stays near chance at tiny scale in 7-10 epochs (underfits; see
    # docs/methods/camfuse.md#training-recipe): its record is checked for what it is, not for
    # accuracy.
    store = RecordStore(root)
    single = store.load(outcomes[3].run_ids["test"]).meta
    joint = store.load(outcomes[0].run_ids["test"]).meta
    assert single["checkpoint_sha256"] != joint["checkpoint_sha256"]  # its own weights
    assert single["params"] < joint["params"]
    best = max(("rgb", "pose"), key=lambda h: by_head[h]["value"])
    low, high = by_head[best]["ci_low"], by_head[best]["ci_high"]
    assert by_head["fused"]["value"] >= by_head[best]["value"] - (high - low) / 2, by_head


@pytest.mark.slow
def test_fuse_combines_the_three_heads(trained: tuple[Path, list[StreamOutcome]], cli: Any
                                       ) -> None:
    root, _ = trained
    code, _, err = cli("fuse", "--method", "camfuse", "--dataset", "synthsign-tiny",
                         "--results", str(root), "--bootstrap", "0")
    assert code == 0, err
    store = RecordStore(root)
    fused = [r for r in store.find(method="camfuse", split="test")
             if r["stream"].startswith("fused:")]
    assert len(fused) == 1
    record = store.load(fused[0]["run_id"])
    inputs = record.meta["fusion"]["inputs"]
    assert sorted(i["stream"] for i in inputs if i["split"] == "test") == sorted(HEADS)
    assert record.meta["fusion"]["score_space"] == "probs"
    head = store.load(trained[1][0].run_ids["test"])
    assert record.meta["params"] == head.meta["params"]  # one network, counted once
