"""Self-learning fusion as a benchmark method (docs/methods/slfusion.md): presets, the paired
video + wrist-IMU pipeline, the five-stage recipe, its losses and published facts. The networks
live in `slrbench.methods.slfusion`.

One training unit, `paired`, gives five streams. `imu` reads the wrist IMU at test time, which
the method's claim excludes: it is an upper bound, stored by the `sensor` stage from its own
modality and marked ↑ in every table (`test_protocol.upper_bound_streams`,
docs/evaluation.md#marks-in-tables). The final prediction may read RGB only
(`prediction_modalities`), so `video`, `generated-imu`, `fused` and `late` never see the sensor.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional
from torch.utils.data import Dataset as TorchDataset

from slrbench.config import apply_overrides, check_fields
from slrbench.datasets.base import SPLITS, Dataset, DatasetSpec, SensorArrays
from slrbench.datasets.clips import uniform_indices
from slrbench.datasets.video import VideoAugment, crop_clips, crop_transform
from slrbench.errors import SlrbenchError
from slrbench.methods.base import (
    FusionRecipe,
    MethodAdapter,
    MethodSpec,
    PublishedResult,
    Stage,
    StreamData,
)
from slrbench.methods.skeleton_adapter import parameter_counts, recipe_text, train_section
from slrbench.methods.slfusion import SelfLearningFusion, SLFusionConfig, mapping_loss
from slrbench.methods.video_adapter import check_unit, unit_config

UNIT = "paired"
STREAMS = ("video", "imu", "generated-imu", "fused", "late")
UPPER_BOUND = ("imu",)  # read the sensor at test time
STAGE_NAMES = ("sensor", "video", "generator", "gen_cls", "fusion")
# The generator stage is selected on the IMU classifier applied to the generated feature: the
# only classifier of generated features that exists before the gen_cls stage trains one.
GENERATOR_PROBE = "imu-classifier-on-generated"
MODALITIES = ("rgb", "sensor")
EVAL_CLIP_BUDGET = 256 * 2**20  # bytes of evaluation clips a feeder keeps in memory

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        # The 16 cached 64 px frames at 32 px, minus the clip's mean frame (a static
        # signer and background otherwise drown the arm movement at this scale,
        # docs/methods/slfusion.md#input-pipeline).
        "data": {"rgb_size": 32, "rgb_frames": 16, "decode_size": 64, "decode_frames": 16,
                 "imu_steps": 60, "subtract_mean_frame": True, "standardise_imu": True,
                 "augment": {"scale": [0.9, 1.1], "rotation_deg": 0.0, "shift": 0.1}},
        "model": {"video": {"divisor": 8, "blocks": [["3b"], ["4b"], ["5b"]],
                            "stem_kernel": [3, 5, 5], "embed": 32, "dropout": 0.4,
                            "keras_bn": False},
                  "sensor": {"channels": 12, "filters": 8, "depth": 3, "kernels": [20, 10, 5],
                             "bottleneck": 8, "residual_every": 3},
                  "mlp": [128, 64], "mlp_dropout": 0.4},
        "train": {"epochs": 20, "batch_size": 16, "optimizer": "adam", "lr": 3e-3,
                  "weight_decay": 1e-4, "schedule": "cosine", "eval_batch_size": 64},
        "stages": {"sensor": {"epochs": 25, "batch_size": 16, "lr": 1e-3},
                   "video": {"epochs": 22, "batch_size": 16, "lr": 3e-3},
                   "generator": {"epochs": 10, "batch_size": 16, "lr": 1e-3},
                   "gen_cls": {"epochs": 5, "batch_size": 16, "lr": 1e-3},
                   "fusion": {"epochs": 6, "batch_size": 16, "lr": 1e-3}},
        "loss": {"mapping": 100.0, "huber_delta": 1.0, "norm_weight": 0.01, "generator_ce": 0.0},
    },
    "paper": {
        "data": {"rgb_size": 224, "rgb_frames": 24, "decode_size": 224, "decode_frames": 24,
                 "imu_steps": 180, "subtract_mean_frame": False, "standardise_imu": False,
                 "augment": {"scale": [1.0, 1.0], "rotation_deg": 0.0, "shift": 0.0}},
        "model": {},  # upstream sizes: the dataclass defaults
        # Keras' Adam defaults and constant rate (upstream fits without a schedule).
        "train": {"epochs": 100, "batch_size": 16, "optimizer": "adam", "lr": 1e-3,
                  "weight_decay": 0.0, "schedule": "constant", "eval_batch_size": 16},
        "stages": {"sensor": {"epochs": 100, "batch_size": 8, "lr": 1e-3},
                   "video": {"epochs": 100, "batch_size": 16, "lr": 1e-3},
                   "generator": {"epochs": 180, "batch_size": 16, "lr": 1e-4},
                   "gen_cls": {"epochs": 100, "batch_size": 16, "lr": 1e-3},
                   "fusion": {"epochs": 150, "batch_size": 8, "lr": 1e-3}},
        "loss": {"mapping": 100.0, "huber_delta": 1.0, "norm_weight": 1.0, "generator_ce": 0.0},
    },
}

_README = "[R] ngoctuhan/Sign-Language-Recognition-with-Self-learning-Fusion-Models README"
_TUNED = "test (every script validates on the test split and keeps its best checkpoint)"

SPEC = MethodSpec(
    name="slfusion",
    title="Self-learning fusion: video classifier + video-to-IMU generator, video only at test",
    paper="Sign Language Recognition with Self-learning Fusion Models (repository README; the "
    "paper link is empty)",
    upstream="ngoctuhan/Sign-Language-Recognition-with-Self-learning-Fusion-Models @ 3db51a7 "
    "(TensorFlow 2.6 / Keras; ported to PyTorch)",
    modalities=("rgb", "sensor"),
    streams=STREAMS,
    units={UNIT: STREAMS},
    upper_bound_streams=UPPER_BOUND,
    # A tiny epoch averages about 1.4 s over the five stages against a skeleton stream's 2 s
    # (1 thread); the runner starts the longest trainings first.
    epoch_cost=0.7,
    presets=tuple(PRESETS),
    default_preset="tiny",
    adapter_version="1",
    summary="An I3D video classifier and an InceptionTime wrist-IMU classifier; a second I3D "
    "(the generator) learns on paired clips to output the IMU network's feature from video "
    "(Huber plus norm-difference loss). At test time only video is read: the video feature "
    "and the generated IMU feature are fused by an MLP, or the video and gen-cls softmaxes "
    "are summed. The real-IMU classifier is stored as a marked upper bound.",
    divergences=(
        "PyTorch port of Keras code that does not run as published (missing time axis in the "
        "video model, wrong keyword names, a loss object without __call__, CE arguments "
        "swapped): the intended computation, written from facts",
        "frames in RGB order (upstream: OpenCV BGR) and ImageNet-normalised (upstream: raw "
        "0-255 values)",
        "selection on val, a held-out split (upstream validates and keeps the best checkpoint "
        "on the test split)",
        "the five upstream scripts (sensor, video, generator, gen-cls, fusion MLP) are five "
        "stages of one resumable unit; each starts from the weights the previous one selected",
        "the sensor network is trained in its own stage first, then frozen (upstream gives it "
        "one Keras epoch every 5th generator epoch when no pre-trained sensor model exists)",
        "the generator starts from the trained video network's weights (upstream's intent, "
        "through a keyword the published code misspells)",
        "generator loss: 100 x (Huber + norm difference); upstream's 30 x CE term has no "
        "gradient path to the generator and is left out; loss.generator_ce > 0 sends u_v "
        "through the frozen IMU classifier instead (design, off by default)",
        "tiny only: the norm difference weighted 0.01 (upstream 1, kept at paper): at weight 1 "
        "the tiny generator learns the batch norm and little else (chosen on val)",
        "generator stage selected on val P-I@1 of the frozen IMU classifier on generated "
        "features (upstream: none; the mapping loss has no accuracy)",
        "gen-cls and the fusion MLP are trained on features of the frozen video network and "
        "generator computed per batch, with the training augmentation (upstream: features "
        "precomputed once)",
        "Adam betas (0.9, 0.999) in every stage (upstream generator: beta1 0.5)",
        "BatchNorm with a learnable scale (upstream Keras I3D: scale=False)",
        "tiny only: I3D-lite (widths / 8, one Mixed block per group, (3,5,5) stem), 16 frames "
        "at 32 px minus the clip's mean frame, scale and shift augmentation, IMU standardised "
        "per channel with train statistics, cosine schedule, weight decay 1e-4, "
        "InceptionTime-lite (8 filters, depth 3, kernels 20/10/5), MLPs 128 and 64 wide",
        "IMU brought to imu_steps by uniform index subsampling or zero padding at the end "
        "(upstream's rule; the exact index formula is inferred)",
        "test: one pass over rgb_frames frames at segment middles (upstream: 24 frames "
        "sampled when the arrays were made)",
    ),
    published=(
        PublishedResult("vsl", "self-learning fusion (IMU in training only)", "pi@1", 87.1,
                        _README, _TUNED, flags="†"),
    ),
    fusion=FusionRecipe(
        strategy="fixed",
        score_space="probs",
        weights={"default": {"video": 1.0, "generated-imu": 1.0}},
        streams=("video", "generated-imu"),
        source="upstream fusion/late_fusion.py: equal sum of the video and gen-cls softmaxes "
        "(the imu stream, an upper bound, is never fused by default)",
    ),
)


# ---------------------------------------------------------------------------------- the data


class ClipSource(Protocol):
    """Decoded frames of one split: a `FrameCache` (SynthSign) or the VSL arrays."""

    def clip(self, index: int) -> np.ndarray:
        """(F, H, W, 3) uint8 RGB frames of clip `index`."""
        ...


@dataclass(frozen=True)
class PairedData:
    """The `data` section: RGB clips from a dataset's decoded frames (`decode_frames` per clip
    at `decode_size`), `rgb_frames` of them at `rgb_size` cut from the whole frame; IMU
    sequences at `imu_steps` steps."""

    rgb_size: int = 32
    rgb_frames: int = 8
    decode_size: int = 64
    decode_frames: int = 16
    imu_steps: int = 60
    subtract_mean_frame: bool = False
    standardise_imu: bool = False
    augment: VideoAugment = field(default_factory=VideoAugment)

    def __post_init__(self) -> None:
        for name in ("rgb_size", "rgb_frames", "decode_size", "decode_frames", "imu_steps"):
            if int(getattr(self, name)) < 1:
                raise SlrbenchError(f"data.{name}: found {getattr(self, name)}; expected a "
                                    "positive integer")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "augment": self.augment.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedData:
        check_fields(cls, data, "data")
        return cls(**{**data, "augment": VideoAugment.from_dict(dict(data.get("augment", {})))})


def fixed_length(signal: np.ndarray, steps: int) -> np.ndarray:
    """(n, C) -> (steps, C): indices ⌊i·n/steps⌋ when longer, zeros appended when shorter."""
    n = len(signal)
    if n >= steps:
        return signal[np.floor(np.arange(steps) * n / steps).astype(np.int64)]
    return np.concatenate([signal, np.zeros((steps - n, signal.shape[1]), signal.dtype)])


def imu_statistics(sensor: SensorArrays) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every valid step of a split."""
    valid = np.concatenate([sensor.data[i, :n] for i, n in enumerate(sensor.lengths)])
    return valid.mean(0), np.maximum(valid.std(0), 1e-6)


def imu_sequences(sensor: SensorArrays, steps: int,
                  stats: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """(N, C, steps) float32: each recording's valid part standardised with `stats` (if any),
    then brought to `steps`; padding stays 0 (the mean, once standardised)."""
    out = []
    for i, n in enumerate(sensor.lengths):
        valid = sensor.data[i, :max(1, int(n))].astype(np.float32)
        if stats is not None:
            valid = (valid - stats[0]) / stats[1]
        out.append(fixed_length(valid, steps).T)
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


class PairedFeeder(TorchDataset):
    """Samples of one split as {"rgb": (3, T, S, S), "sensor": (C, steps)} float32 (the
    modalities set), label, index. RGB: `rgb_frames` of the decoded frames (one random frame per
    segment in training, the segment middles otherwise), the whole frame resampled to
    `rgb_size` through a random scale / rotation / shift in training, ImageNet-normalised; the
    clip's mean frame subtracted when configured. A modality not set is never read."""

    def __init__(self, frames: ClipSource, sensor: np.ndarray, labels: np.ndarray,
                 config: PairedData, train: bool, seed: int = 0) -> None:
        self.frames, self.sensor, self.config = frames, sensor, config
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(sensor) != len(self.labels):
            raise SlrbenchError(f"paired feeder: {len(sensor)} IMU recordings for "
                                f"{len(self.labels)} labels; expected one per clip")
        self.train, self.seed, self.epoch = train, seed, 0
        self.modalities: tuple[str, ...] = MODALITIES
        # Evaluation clips are the same every epoch and every stage: kept once made, up to a
        # memory budget (a small preset's val split is predicted some 70 times).
        self._kept: dict[int, Tensor] = {}
        self._kept_bytes = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_modalities(self, names: tuple[str, ...]) -> None:
        if not names or any(n not in MODALITIES for n in names):
            raise SlrbenchError(f"modalities: found {list(names)}; expected some of "
                                f"{', '.join(MODALITIES)}")
        self.modalities = tuple(names)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int, int]:
        index = int(index)
        rng = (np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))
               if self.train else None)
        sample: dict[str, Tensor] = {}
        if "rgb" in self.modalities:
            sample["rgb"] = self._rgb(index, rng) if rng is not None else self._eval_rgb(index)
        if "sensor" in self.modalities:
            sample["sensor"] = torch.from_numpy(self.sensor[index])
        return sample, int(self.labels[index]), index

    def _eval_rgb(self, index: int) -> Tensor:
        if index in self._kept:
            return self._kept[index]
        rgb = self._rgb(index, None)
        if self._kept_bytes + rgb.nbytes <= EVAL_CLIP_BUDGET:
            self._kept[index] = rgb
            self._kept_bytes += rgb.nbytes
        return rgb

    def _rgb(self, index: int, rng: np.random.Generator | None) -> Tensor:
        cfg, aug = self.config, self.config.augment
        clip = self.frames.clip(index)
        picked = clip[uniform_indices(len(clip), cfg.rgb_frames, rng)]
        height, width = clip.shape[1:3]
        box = (0.0, 0.0, float(width), float(height))
        if rng is None:
            matrix, centre = crop_transform(box)
        else:
            matrix, centre = crop_transform(
                box, float(rng.uniform(*aug.scale)),
                math.radians(float(rng.uniform(-1, 1) * aug.rotation_deg)),
                tuple(rng.uniform(-aug.shift, aug.shift, 2)))
        rgb = crop_clips(torch.from_numpy(np.ascontiguousarray(picked))[None],
                         torch.as_tensor(matrix)[None], torch.as_tensor(centre)[None],
                         (float(width), float(height)), cfg.rgb_size)[0]
        if cfg.subtract_mean_frame:
            rgb = rgb - rgb.mean(dim=1, keepdim=True)
        return rgb


def check_paired(dataset: Dataset, method: str) -> None:
    missing = [m for m in MODALITIES if m not in dataset.spec.modalities]
    readers = [name for name in ("frame_cache", "sensor")
               if not callable(getattr(dataset, name, None))]
    if missing or readers:
        raise SlrbenchError(
            f"--dataset {dataset.spec.name}: modalities {', '.join(dataset.spec.modalities)}; "
            f"method '{method}' expected RGB frames with paired wrist IMU recordings (a dataset "
            "with frame_cache and sensor, docs/methods/slfusion.md#input-pipeline)")


def paired_stream_data(dataset: Dataset, data: PairedData, seed: int) -> StreamData:
    check_paired(dataset, SPEC.name)
    sensors = {s: dataset.sensor(s) for s in SPLITS}  # type: ignore[attr-defined]
    stats = imu_statistics(sensors["train"]) if data.standardise_imu else None
    feeders = {}
    for split in SPLITS:
        frames = dataset.frame_cache(split, data.decode_size,  # type: ignore[attr-defined]
                                     data.decode_frames)
        sensor = imu_sequences(sensors[split], data.imu_steps, stats)
        feeders[split] = PairedFeeder(frames, sensor, dataset.labels(split), data,
                                      train=split == "train", seed=seed)
    return StreamData(train=feeders["train"], val=feeders["val"], test=feeders["test"])


# ------------------------------------------------------------------------------- the adapter


def _model_config(preset: str, num_classes: int, channels: int = 12) -> SLFusionConfig:
    model = dict(PRESETS[preset]["model"])
    model["sensor"] = {**model.get("sensor", {}), "channels": channels}
    return SLFusionConfig.from_dict({**model, "num_classes": num_classes})


def _build_preset(preset: str, num_classes: int) -> nn.Module:
    return SelfLearningFusion(_model_config(preset, num_classes))


class SLFusionAdapter(MethodAdapter):
    spec = SPEC

    def resolve_config(self, preset: str, spec: DatasetSpec, stream: str,
                       overrides: dict[str, Any]) -> dict[str, Any]:
        check_unit(self, preset, stream, UNIT)
        recipe = PRESETS[preset]
        data = PairedData.from_dict(recipe["data"])  # checked and filled with its defaults
        named = spec.extra.get("sensor_channels")  # SynthSign's and VSL's IMU channels
        channels = len(named) if isinstance(named, (list, tuple)) and named else 12
        config: dict[str, Any] = {
            **unit_config(self, preset, stream, data.to_dict(),
                          _model_config(preset, 1, channels), recipe["train"]),
            "stages": {name: dict(recipe["stages"][name]) for name in STAGE_NAMES},
            "loss": dict(recipe["loss"]),
            "test_protocol": {
                "clips": 1, "frames": "segment middles",
                "modalities": {stream: (["sensor"] if stream in UPPER_BOUND else ["rgb"])
                               for stream in STREAMS},
                "upper_bound_streams": list(UPPER_BOUND),
            },
            "decisions": [],
        }
        # `--epochs N` sets every stage to N unless a stage's epochs are set on their own.
        if "train.epochs" in overrides:
            epochs = overrides["train.epochs"]
            overrides = {**{f"stages.{s}.epochs": epochs for s in STAGE_NAMES
                            if f"stages.{s}.epochs" not in overrides}, **overrides}
        config = apply_overrides(config, overrides)
        mean_frame = "subtracted" if config["data"]["subtract_mean_frame"] else "kept"
        config["decisions"] = [  # named after the overrides, so they say what runs
            "slfusion.rgb_order=rgb",
            "slfusion.normalise=imagenet",
            "slfusion.stages=sensor_video_generator_gencls_fusion",
            "slfusion.generator_init=video",
            f"slfusion.generator_loss={config['loss']['mapping']:g}x(huber+"
            f"{config['loss']['norm_weight']:g}xnorm_difference)",
            "slfusion.selection=val",
            f"slfusion.mean_frame={mean_frame}",
            "slfusion.imu_at_test=upper_bound_only",
        ]
        return config

    def build_model(self, config: dict[str, Any], num_classes: int) -> nn.Module:
        return SelfLearningFusion(SLFusionConfig.from_dict({**config["model"],
                                                            "num_classes": num_classes}))

    def stream_data(self, dataset: Dataset, config: dict[str, Any], seed: int) -> StreamData:
        return paired_stream_data(dataset, PairedData.from_dict(config["data"]), seed)

    # -- the multi-head, multi-stage contract ------------------------------------------------
    def heads(self, config: dict[str, Any]) -> tuple[str, ...]:
        return STREAMS

    def stages(self, config: dict[str, Any]) -> tuple[Stage, ...]:
        def train(name: str) -> dict[str, Any]:
            return train_section({**config["train"], **config["stages"][name]})

        return (Stage("sensor", train("sensor"), ("sensor",), "imu", stores={"imu": "imu"}),
                Stage("video", train("video"), ("rgb",), "video"),
                Stage("generator", train("generator"), ("rgb", "sensor"), GENERATOR_PROBE),
                Stage("gen_cls", train("gen_cls"), ("rgb",), "generated-imu"),
                Stage("fusion", train("fusion"), ("rgb",), "fused"))

    def prediction_modalities(self, config: dict[str, Any]) -> tuple[str, ...]:
        return ("rgb",)  # the method's claim: video alone at test time

    def training_loss(self, model: nn.Module, inputs: Any, targets: Tensor, epoch: int,
                      config: dict[str, Any], stage: Stage) -> tuple[Tensor, Tensor]:
        assert isinstance(model, SelfLearningFusion)
        smoothing = float(stage.train.get("label_smoothing", 0.0))

        def ce(logits: Tensor) -> Tensor:
            return functional.cross_entropy(logits.float(), targets, label_smoothing=smoothing)

        if stage.name == "sensor":
            model.train_only(("sensor",))
            logits = model.imu_logits(inputs["sensor"])
            return ce(logits), logits
        if stage.name == "video":
            model.train_only(("video",))
            logits = model.video(inputs["rgb"])
            return ce(logits), logits
        if stage.name == "generator":
            return self._generator_loss(model, inputs, config, ce)
        model.train_only((stage.name,))  # gen_cls or fusion, on frozen features
        with torch.no_grad():
            generated = model.generator(inputs["rgb"])
            if stage.name == "fusion":
                generated = torch.cat([model.video.feature(inputs["rgb"]), generated], 1)
        logits = model.part(stage.name)(generated)
        return ce(logits), logits

    def _generator_loss(self, model: SelfLearningFusion, inputs: dict[str, Tensor],
                        config: dict[str, Any], ce: Callable[[Tensor], Tensor]
                        ) -> tuple[Tensor, Tensor]:
        """100 x mapping loss (u_v = generator(video) against the frozen IMU network's u_s),
        plus, when configured, CE of u_v through the frozen IMU classifier."""
        if not bool(model.generator_started):
            model.start_generator()
        model.train_only(("generator",))
        loss_config = config["loss"]
        with torch.no_grad():
            target = model.sensor.feature(inputs["sensor"])
        generated = model.generator(inputs["rgb"])
        # The IMU classifier stays frozen even when its CE trains the generator.
        classifier = model.sensor.classifier
        probe = functional.linear(generated, classifier.weight.detach(),
                                  classifier.bias.detach())
        loss = float(loss_config["mapping"]) * mapping_loss(
            generated.float(), target.float(), float(loss_config["huber_delta"]),
            float(loss_config["norm_weight"]))
        if float(loss_config["generator_ce"]) > 0:
            loss = loss + float(loss_config["generator_ce"]) * ce(probe)
        return loss, probe

    def predict_heads(self, model: nn.Module, inputs: Any, config: dict[str, Any],
                      stage: Stage | None = None) -> dict[str, Tensor]:
        """Stage None (the final val and test predictions): the video-only heads, from
        `inputs["rgb"]` alone, whatever else the batch holds."""
        assert isinstance(model, SelfLearningFusion)
        name = stage.name if stage is not None else None
        if name == "sensor":
            return {"imu": model.imu_logits(inputs["sensor"])}
        if name == "video":
            return {"video": model.video(inputs["rgb"])}
        if name == "generator":
            return {GENERATOR_PROBE: model.sensor.classifier(model.generator(inputs["rgb"]))}
        if name == "gen_cls":
            return {"generated-imu": model.gen_cls(model.generator(inputs["rgb"]))}
        return model.video_only(inputs["rgb"])

    def head_parameters(self, model: nn.Module, stream: str, config: dict[str, Any]) -> int:
        """The parts behind one stream (the `imu` record's is the IMU network alone)."""
        assert isinstance(model, SelfLearningFusion)
        parts = {"video": ("video",), "imu": ("sensor",),
                 "generated-imu": ("generator", "gen_cls"),
                 "fused": ("video", "generator", "fusion"),
                 "late": ("video", "generator", "gen_cls")}.get(stream)
        if parts is None:
            return super().head_parameters(model, stream, config)
        return sum(p.numel() for part in parts for p in model.part(part).parameters()
                   if p.requires_grad)

    def describe_inputs(self, config: dict[str, Any]) -> dict[str, Any]:
        data = config["data"]
        return {"rgb": [3, data["rgb_frames"], data["rgb_size"], data["rgb_size"]],
                "sensor": [config["model"]["sensor"]["channels"], data["imu_steps"]]}

    def example_inputs(self, config: dict[str, Any], batch: int, train: bool,
                       device: torch.device) -> dict[str, Tensor]:
        shapes = self.describe_inputs(config)
        names = MODALITIES if train else self.prediction_modalities(config)
        return {name: torch.randn(batch, *shapes[name], device=device) for name in names}

    def describe_presets(self) -> list[dict[str, Any]]:
        rows = []
        for preset, recipe in PRESETS.items():
            data, stages = recipe["data"], recipe["stages"]
            rows.append({
                "preset": preset,
                "params": parameter_counts(functools.partial(_build_preset, preset),
                                           classes=(20, 50), meta=True),
                "inputs": f"RGB {data['rgb_frames']} x {data['rgb_size']}², IMU "
                          f"{data['imu_steps']} steps",
                "recipe": "; ".join(f"{name} {recipe_text({**recipe['train'], **stages[name]})}"
                                    for name in STAGE_NAMES),
            })
        return rows
