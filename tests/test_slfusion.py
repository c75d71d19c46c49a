"""Self-learning fusion as a method (docs/methods/slfusion.md): its unit, streams and five
stages, the generator loss against a hand-computed case, network shapes, the IMU pipeline, the
upper-bound mark, and the proof that the video-only heads never read the IMU (a NaN sensor, a
removed sensor, and in a trained run a replaced test sensor leave them bit-identical); (slow)
that the tiny preset learns on SynthSign-tiny with every head."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional
from torch.utils.data import default_collate

from slrbench.datasets.base import Dataset, SensorArrays
from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.marks import record_flags, record_stream_label, stream_label
from slrbench.methods.slfusion import (
    I3D,
    VIDEO_HEADS,
    I3DConfig,
    InceptionTime,
    InceptionTimeConfig,
    SelfLearningFusion,
    SLFusionConfig,
    mapping_loss,
)
from slrbench.methods.slfusion_adapter import (
    GENERATOR_PROBE,
    STREAMS,
    UNIT,
    PairedFeeder,
    SLFusionAdapter,
    check_paired,
    fixed_length,
    imu_sequences,
    imu_statistics,
)
from slrbench.report.latex import marks
from slrbench.report.method_card import card_markdown
from slrbench.store import RecordStore
from slrbench.training import RunRequest, StreamOutcome, run


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return load_dataset("synthsign-tiny")


@pytest.fixture(scope="module")
def setup(tiny: Dataset) -> tuple[SLFusionAdapter, dict[str, Any], Any, SelfLearningFusion]:
    adapter = SLFusionAdapter()
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {})
    data = adapter.stream_data(tiny, config, seed=0)
    torch.manual_seed(0)
    model = adapter.build_model(config, tiny.spec.num_classes)
    assert isinstance(model, SelfLearningFusion)
    return adapter, config, data, model


def _batch(feeder: Any, modalities: tuple[str, ...], n: int = 4) -> dict[str, torch.Tensor]:
    feeder.set_modalities(modalities)
    return default_collate([feeder[i][0] for i in range(n)])  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- the contract


def test_one_unit_five_streams_five_stages(tiny: Dataset) -> None:
    adapter = SLFusionAdapter()
    assert adapter.spec.training_units(("fused",)) == (UNIT,)
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {})
    assert adapter.heads(config) == STREAMS == adapter.spec.streams
    stages = adapter.stages(config)
    assert [(s.name, s.modalities, s.select_on, s.stores) for s in stages] == [
        ("sensor", ("sensor",), "imu", {"imu": "imu"}),
        ("video", ("rgb",), "video", {}),
        ("generator", ("rgb", "sensor"), GENERATOR_PROBE, {}),
        ("gen_cls", ("rgb",), "generated-imu", {}),
        ("fusion", ("rgb",), "fused", {})]
    assert [s.train["epochs"] for s in stages] == [25, 22, 10, 5, 6]
    # The final prediction may read RGB only: every stream but the stage-stored imu is
    # predicted from it.
    assert adapter.prediction_modalities(config) == ("rgb",)
    assert set(STREAMS) - {"imu"} == set(VIDEO_HEADS)
    short = adapter.resolve_config("tiny", tiny.spec, UNIT, {"train.epochs": 2,
                                                             "stages.video.epochs": 3})
    assert [s.train["epochs"] for s in adapter.stages(short)] == [2, 3, 2, 2, 2]
    with pytest.raises(SlrbenchError, match="slfusion: training unit 'fused'; expected 'paired'"):
        adapter.resolve_config("tiny", tiny.spec, "fused", {})


def test_upper_bound_is_marked_everywhere(tiny: Dataset) -> None:
    adapter = SLFusionAdapter()
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {})
    protocol = config["test_protocol"]
    assert protocol["upper_bound_streams"] == ["imu"] == list(adapter.spec.upper_bound_streams)
    assert protocol["modalities"]["imu"] == ["sensor"]
    assert all(protocol["modalities"][h] == ["rgb"] for h in VIDEO_HEADS)
    meta = {"stream": "imu", "test_protocol": protocol, "selection_split": "val"}
    assert record_flags(meta, "test") == "↑"
    assert record_flags({**meta, "stream": "fused"}, "test") == ""
    fused_with_imu = {**meta, "stream": "fused:fixed",
                      "fusion": {"inputs": [{"stream": "video"}, {"stream": "imu"}]}}
    assert record_flags(fused_with_imu, "test") == "↑"
    video_only = {**fused_with_imu, "fusion": {"inputs": [{"stream": "video"},
                                                          {"stream": "generated-imu"}]}}
    assert record_flags(video_only, "test") == ""
    assert marks("†↑") == r"\dagger\uparrow"  # LaTeX tables
    assert stream_label("imu", adapter.spec.upper_bound_streams) == "imu ↑"
    assert record_stream_label({**meta, "split": "test"}) == "imu ↑"  # minimal-pairs rows
    assert record_stream_label({**meta, "stream": "late", "split": "test"}) == "late"
    card = card_markdown(adapter)
    assert "streams: video, imu ↑, generated-imu, fused, late" in card
    assert "- ↑: upper bound" in card
    recipe = adapter.spec.fusion
    assert recipe is not None and recipe.streams is not None and "imu" not in recipe.streams


# ------------------------------------------------------------------------------- networks


def test_network_shapes(setup: tuple[SLFusionAdapter, dict[str, Any], Any, SelfLearningFusion]
                        ) -> None:
    model = setup[3]
    model.eval()
    rgb = torch.randn(3, 3, 16, 32, 32)
    sensor = torch.randn(3, 12, 60)
    with torch.no_grad():
        assert model.video(rgb).shape == (3, 20)
        assert model.video.feature(rgb).shape == (3, 32)
        assert model.generator(rgb).shape == (3, 32)  # the no-top network: the IMU feature
        assert model.sensor.feature(sensor).shape == (3, 32)  # 4 x 8 filters
        assert model.imu_logits(sensor).shape == (3, 20)
        heads = model.video_only(rgb)
    assert tuple(heads) == VIDEO_HEADS and all(v.shape == (3, 20) for v in heads.values())
    # late: the log of the summed softmaxes, so its softmax is their mean
    mean = (functional.softmax(heads["video"], 1) + functional.softmax(heads["generated-imu"],
                                                                       1)) / 2
    torch.testing.assert_close(functional.softmax(heads["late"], 1), mean)


def test_paper_i3d_layout_on_the_meta_device() -> None:
    with torch.device("meta"):
        video = I3D(I3DConfig(), classes=50)
        features = video.features(torch.empty(2, 3, 24, 224, 224))
        sensor = InceptionTime(InceptionTimeConfig(), classes=50)
        u_s = sensor.feature(torch.empty(2, 12, 180))
    assert features.shape == (2, 1024, 3, 7, 7)  # Mixed 5c, pooled by the (3, 7, 7) average
    assert u_s.shape == (2, 128)
    assert len(sensor.shortcuts) == 2  # residuals after modules 3 and 6
    count = sum(p.numel() for p in video.parameters())
    assert count == 12_424_914 and 11e6 < count < 13e6  # the notes' "about 12 M"


def test_inception_module_keeps_the_length_with_even_kernels() -> None:
    sensor = InceptionTime(InceptionTimeConfig(channels=12, filters=4, depth=3,
                                               kernels=(40, 20, 10), bottleneck=4), classes=5)
    out = sensor.blocks[0](torch.randn(2, 12, 37))
    assert out.shape == (2, 16, 37)
    pad = sensor.blocks[0].convs[0][0]  # Keras' "same": 19 zeros before, 20 after
    assert isinstance(pad, torch.nn.ConstantPad1d) and pad.padding == (19, 20)


def test_config_round_trip_and_errors() -> None:
    config = SLFusionConfig(num_classes=7, video=I3DConfig(divisor=8, embed=32),
                            sensor=InceptionTimeConfig(filters=8), mlp=(16, 8))
    assert SLFusionConfig.from_dict(config.to_dict()) == config
    with pytest.raises(SlrbenchError, match=r"model.video.embed: found 128; expected the IMU "
                                            r"feature width 4 x model.sensor.filters = 32"):
        SLFusionConfig(num_classes=7, sensor=InceptionTimeConfig(filters=8))
    with pytest.raises(SlrbenchError, match=r"model\.video\.blocks: found"):
        I3DConfig(blocks=(("3b",), ("9z",), ("5b",)))
    with pytest.raises(SlrbenchError, match=r"model\.video: unknown field 'width'"):
        SLFusionConfig.from_dict({"num_classes": 3, "video": {"width": 8}})


# -------------------------------------------------------------------------- the generator


def test_mapping_loss_against_a_hand_computed_case() -> None:
    generated = torch.tensor([[0.5, 3.0], [-1.0, 0.0]])
    target = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    # Huber (delta 1) per element: 0.5·0.5² = 0.125; |2| > 1: 2 - 0.5 = 1.5; |-1| = delta:
    # 0.5; 0. Mean 2.125 / 4 = 0.53125. Frobenius norms: √10.25 and 1.
    huber, difference = 0.53125, math.sqrt(10.25) - 1.0
    assert mapping_loss(generated, target).item() == pytest.approx(huber + difference)
    assert mapping_loss(generated, target, norm_weight=0.01).item() == pytest.approx(
        huber + 0.01 * difference)
    assert mapping_loss(generated, target, delta=2.0).item() == pytest.approx(
        (0.125 + 2.0 + 0.5 + 0.0) / 4 + difference)  # 0.5·2² = 2 inside delta 2
    with pytest.raises(SlrbenchError, match=r"generated features \[2, 2\]; expected the IMU "
                                            r"features' shape \[2, 3\]"):
        mapping_loss(generated, torch.zeros(2, 3))


def test_generator_stage_trains_the_generator_alone(
        setup: tuple[SLFusionAdapter, dict[str, Any], Any, SelfLearningFusion],
        tiny: Dataset) -> None:
    adapter, config, data, model = setup
    stage = adapter.stages(config)[2]
    inputs = _batch(data.train, ("rgb", "sensor"))
    targets = torch.as_tensor(tiny.labels("train")[:4])
    model.eval()  # no dropout, fixed BN statistics: two forwards agree
    model.zero_grad()
    loss, probe = adapter.training_loss(model, inputs, targets, 0, config, stage)
    assert bool(model.generator_started)  # started from the video network's layers
    video = model.video.state_dict()
    assert all(torch.equal(v, video[k]) for k, v in model.generator.state_dict().items())
    expected = 100 * mapping_loss(model.generator(inputs["rgb"]),
                                  model.sensor.feature(inputs["sensor"]), 1.0, 0.01)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in model.generator.parameters() if p.requires_grad
               and p.dim() > 1)
    frozen = [*model.sensor.parameters(), *model.video.parameters()]
    assert all(p.grad is None for p in frozen)
    assert probe.shape == (4, 20)
    model.zero_grad()
    # started once: later batches (and a resumed stage, the flag is saved) keep its training
    with torch.no_grad():
        next(model.generator.parameters()).add_(1.0)
    adapter.training_loss(model, inputs, targets, 0, config, stage)
    assert not torch.equal(next(model.generator.parameters()), next(model.video.parameters()))
    assert "generator_started" in model.state_dict()


def test_fusion_stage_reads_frozen_features(
        setup: tuple[SLFusionAdapter, dict[str, Any], Any, SelfLearningFusion],
        tiny: Dataset) -> None:
    adapter, config, data, model = setup
    inputs = _batch(data.train, ("rgb",))
    targets = torch.as_tensor(tiny.labels("train")[:4])
    model.train()
    before = {k: v.clone() for k, v in model.video.state_dict().items()}
    loss, _ = adapter.training_loss(model, inputs, targets, 0, config,
                                    adapter.stages(config)[4])
    loss.backward()
    assert all(p.grad is not None for p in model.fusion.parameters())
    assert all(p.grad is None for part in ("video", "generator", "gen_cls", "sensor")
               for p in model.part(part).parameters())
    # frozen parts ran in eval mode: their BatchNorm statistics did not move
    assert all(torch.equal(v, before[k]) for k, v in model.video.state_dict().items())
    assert not model.video.training and model.fusion.training
    model.zero_grad()


# --------------------------------------------------------------- video only at test time


def test_video_only_heads_never_read_the_imu(
        setup: tuple[SLFusionAdapter, dict[str, Any], Any, SelfLearningFusion]) -> None:
    adapter, config, data, model = setup
    model.eval()
    batch = _batch(data.test, ("rgb", "sensor"))
    poisoned = {**batch, "sensor": torch.full_like(batch["sensor"], math.nan)}
    with torch.no_grad():
        clean = adapter.predict_heads(model, batch, config)
        nan = adapter.predict_heads(model, poisoned, config)
        removed = adapter.predict_heads(model, {"rgb": batch["rgb"]}, config)
        imu = adapter.predict_heads(model, poisoned, config, adapter.stages(config)[0])
    assert set(clean) == set(VIDEO_HEADS) and "imu" not in clean
    for head in VIDEO_HEADS:
        assert torch.isfinite(clean[head]).all()
        assert torch.equal(clean[head], nan[head]) and torch.equal(clean[head], removed[head])
    assert torch.isnan(imu["imu"]).all()  # the one head that reads the sensor
    # and the test pipeline, set to the prediction modalities, does not carry it at all
    data.test.set_modalities(adapter.prediction_modalities(config))
    sample, _, _ = data.test[0]
    assert set(sample) == {"rgb"}


# ------------------------------------------------------------------------------- the data


def test_fixed_length_subsamples_or_pads() -> None:
    signal = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(fixed_length(signal, 3), signal[[0, 1, 3]])  # ⌊i·5/3⌋
    padded = fixed_length(signal, 7)
    np.testing.assert_array_equal(padded[:5], signal)
    assert not padded[5:].any() and padded.shape == (7, 2)


def test_imu_sequences_standardise_valid_steps_only() -> None:
    data = np.zeros((2, 4, 1), np.float32)
    data[0, :2, 0] = [1.0, 3.0]
    data[1, :4, 0] = [1.0, 3.0, 1.0, 3.0]
    sensor = SensorArrays(data=data, lengths=np.array([2, 4]), rate_hz=1.0, channels=("a",))
    mean, std = imu_statistics(sensor)
    assert (mean[0], std[0]) == (2.0, 1.0)  # over the six valid steps, not the padding
    out = imu_sequences(sensor, 3, (mean, std))
    assert out.shape == (2, 1, 3)
    np.testing.assert_array_equal(out[0, 0], [-1.0, 1.0, 0.0])  # padding stays at the mean
    np.testing.assert_array_equal(out[1, 0], [-1.0, 1.0, -1.0])  # rows ⌊i·4/3⌋ = 0, 1, 2


def test_feeder_shapes_and_modalities(
        setup: tuple[SLFusionAdapter, dict[str, Any], Any, SelfLearningFusion]) -> None:
    _, _, data, _ = setup
    train = data.train
    assert isinstance(train, PairedFeeder)
    train.set_modalities(("rgb", "sensor"))
    sample, label, index = train[5]
    assert sample["rgb"].shape == (3, 16, 32, 32) and sample["sensor"].shape == (12, 60)
    assert (label, index) == (int(train.labels[5]), 5)
    # mean frame subtracted: every pixel's mean over time is zero
    assert sample["rgb"].mean(dim=1).abs().max() < 1e-5
    train.set_modalities(("sensor",))
    assert set(train[5][0]) == {"sensor"}
    with pytest.raises(SlrbenchError, match=r"modalities: found \['heatmap'\]; expected some of "
                                            "rgb, sensor"):
        train.set_modalities(("heatmap",))
    test = data.test
    test.set_modalities(("rgb",))
    assert torch.equal(test[3][0]["rgb"], test[3][0]["rgb"])  # evaluation clips are fixed


def test_a_dataset_without_imu_is_refused(tiny: Dataset) -> None:
    class VideoOnly:
        spec = replace(tiny.spec, modalities=("pose", "rgb"))

    with pytest.raises(SlrbenchError, match=r"modalities pose, rgb; method 'slfusion' "
                                            "expected RGB frames with paired wrist IMU"):
        check_paired(VideoOnly(), "slfusion")  # type: ignore[arg-type]


def test_cpu_training_loss_is_deterministic(tiny: Dataset) -> None:
    adapter = SLFusionAdapter()
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {})
    data = adapter.stream_data(tiny, config, seed=3)
    inputs = _batch(data.train, ("rgb",))
    targets = torch.as_tensor(tiny.labels("train")[:4])
    losses = []
    for _ in range(2):
        torch.manual_seed(1)
        model = adapter.build_model(config, 20)
        model.train()
        loss, _ = adapter.training_loss(model, inputs, targets, 0, config,
                                        adapter.stages(config)[1])
        losses.append(loss.item())
    assert losses[0] == losses[1]


# ------------------------------------------------------------------------------ learning


class NoisyTestIMU:
    """SynthSign-tiny with its test IMU replaced by noise: what the video-only heads predict
    must not change."""

    def __init__(self, source: Dataset) -> None:
        self.source, self.spec = source, source.spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def sensor(self, split: str) -> SensorArrays:
        real: SensorArrays = self.source.sensor(split)  # type: ignore[attr-defined]
        if split != "test":
            return real
        noise = np.random.default_rng(7).normal(0, 5, real.data.shape).astype(np.float32)
        return replace(real, data=noise)


@pytest.mark.slow
def test_replacing_the_test_imu_changes_only_the_imu_records(
        trained: tuple[Path, list[StreamOutcome]], tiny: Dataset, tmp_path: Path) -> None:
    """The trained unit's weights scored through the runner (`--init`, 0 epochs) on the real
    and on the noisy test IMU: only the `imu` upper bound may notice."""
    root, outcomes = trained
    fused = next(o for o in outcomes if o.stream == "fused")
    weights = root / "checkpoints" / RecordStore(root).load(fused.run_ids["test"]).meta[
        "checkpoint"]
    scores = {}
    for name, dataset in (("real", tiny), ("noise", NoisyTestIMU(tiny))):
        store = RecordStore(tmp_path / name)
        request = RunRequest(method=SLFusionAdapter(), dataset=dataset,  # type: ignore[arg-type]
                             preset="tiny", streams=("fused",), seed=0, progress=False,
                             init=weights, overrides={"train.epochs": 0})
        evaluated = run(request, store, jobs=1, threads=1)
        assert {o.status for o in evaluated} == {"evaluated"}
        scores[name] = {o.stream: store.load(o.run_ids["test"]).scores for o in evaluated}
    # Evaluating the stored weights reproduces the trained records' video-only logits.
    for outcome in outcomes:
        if outcome.stream in VIDEO_HEADS:
            np.testing.assert_allclose(
                scores["real"][outcome.stream],
                RecordStore(root).load(outcome.run_ids["test"]).scores, rtol=0, atol=1e-5)
    for head in VIDEO_HEADS:
        np.testing.assert_array_equal(scores["real"][head], scores["noise"][head])
    assert not np.array_equal(scores["real"]["imu"], scores["noise"]["imu"])


@pytest.fixture(scope="module")
def trained(tiny: Dataset, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, list[StreamOutcome]]:
    root = tmp_path_factory.mktemp("slfusion") / "results"
    request = RunRequest(method=SLFusionAdapter(), dataset=tiny, preset="tiny",
                         streams=("video",), seed=0, progress=False)  # the whole unit trains
    return root, run(request, RecordStore(root), jobs=1, threads=1)


@pytest.mark.slow
def test_tiny_learns_with_every_head(trained: tuple[Path, list[StreamOutcome]],
                                     tiny: Dataset) -> None:
    root, outcomes = trained
    by_head = {o.stream: o.metrics["test"]["pi@1"] for o in outcomes}
    assert list(by_head) == list(STREAMS)
    chance = 1 / tiny.spec.num_classes
    for head, metric in by_head.items():
        assert metric["value"] >= 3 * chance, (head, metric)
    store = RecordStore(root)
    records = {o.stream: store.load(o.run_ids["test"]).meta for o in outcomes}
    assert {h for h, meta in records.items() if "↑" in record_flags(meta, "test")} == {"imu"}
    imu, fused = records["imu"], records["fused"]
    assert imu["checkpoint_sha256"] != fused["checkpoint_sha256"]  # the sensor stage's weights
    assert imu["params"] < fused["params"]
    assert [s["name"] for s in fused["stages"]] == ["sensor", "video", "generator", "gen_cls",
                                                    "fusion"]
