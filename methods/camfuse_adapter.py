"""CAMFuse (reconstruction) as a benchmark method: presets, the two-stage recipe, the video
pipeline settings and published facts (docs/methods/camfuse.md). The network lives in
`slrbench.methods.camfuse`; the data side in `slrbench.datasets.video`.

One training unit, `rgbpose`, gives three streams: the RGB pathway's head, the pose (heatmap)
pathway's head and the fused head. Its recipe has three stages: RGB-only pre-training, pose-only
pre-training (each trains its own pathway and head, selected on val by that head), then joint
fine-tuning of everything with the sum of the three cross-entropies, selected on the fused head.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from slrbench.config import apply_overrides, rescale_schedule
from slrbench.datasets.base import Dataset, DatasetSpec
from slrbench.datasets.heatmaps import HeatmapConfig
from slrbench.datasets.layouts import get_layout
from slrbench.datasets.video import VideoAugment, VideoConfig
from slrbench.methods.base import (
    FusionRecipe,
    MethodAdapter,
    MethodSpec,
    PublishedResult,
    Stage,
    StreamData,
)
from slrbench.methods.camfuse import CAMFuse, CAMFuseConfig
from slrbench.methods.skeleton_adapter import parameter_counts, recipe_text
from slrbench.methods.video_adapter import (
    check_unit,
    clip_probabilities,
    input_shapes,
    log_probabilities,
    unit_config,
    video_stream_data,
)

UNIT = "rgbpose"
HEADS = ("rgb", "pose", "fused")
# The pre-trained single-pathway models, stored after their stages: the paper's "RGB" and
# "skeleton" single-stream rows (the joint model's rgb and pose heads read both pathways).
SINGLE = ("rgb_only", "pose_only")
# Lower body of COCO-WholeBody (hips, knees, ankles 11-16, feet 17-22): unreliable in sign
# language video, so CAMFuse sets it to the origin; the score goes too, or every zeroed joint
# would draw a blob in the image corner (docs/methods/camfuse.md#reconstruction-decisions).
LOWER_BODY = tuple(range(11, 23))

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "data": {"layout": "samslr_27", "rgb_size": 64, "rgb_frames": 8, "pose_frames": 8,
                 "heatmap_size": 16, "decode_size": 64, "decode_frames": 16},
        # dropout and lr chosen on val fused P-I@1 among six settings
        # (docs/methods/camfuse.md#training-recipe)
        "model": {"width": 8, "dropout": 0.2},
        "pretrain_epochs": 10,
        "train": {"epochs": 10, "batch_size": 16, "optimizer": "adam", "lr": 0.02,
                  "warmup_epochs": 1, "schedule": "cosine", "weight_decay": 1e-4,
                  "eval_batch_size": 64},
        "test_clips": 1,
    },
    "paper": {
        "data": {"layout": "coco_wholebody_133", "rgb_size": 224, "rgb_frames": 8,
                 "pose_frames": 32, "heatmap_size": 56, "decode_size": 256, "decode_frames": 64,
                 "zeroed_joints": list(LOWER_BODY)},
        "model": {},
        "pretrain_epochs": 180,
        # pyskl's joint fine-tuning (8 GPUs x 6 clips; lr scaled to the batch by the user)
        "train": {"epochs": 20, "batch_size": 48, "optimizer": "sgd", "lr": 0.0075,
                  "momentum": 0.9, "nesterov": False, "weight_decay": 1e-4, "schedule": "step",
                  "milestones": [12, 16], "gamma": 0.1, "grad_clip": 40.0,
                  "eval_batch_size": 8},
        "test_clips": 10,
    },
}

_TABLE = "[R] CAMFuse repository result table"
_TUNED = "unknown (pyskl --test-best on the validated split)"

SPEC = MethodSpec(
    name="camfuse",
    title="CAMFuse (reconstruction): RGB and keypoint-heatmap 3-D CNNs with ST-CAF",
    paper="Hu, Ju, Mai, Gao, Holistic-based Cross Attention Modal Fusion Network for Video Sign "
    "Language Recognition, IEEE TCSS 2025",
    upstream="hj22222222/CAMFuse @ fbc4035 (README and result tables only; no code); base: "
    "kennymckormick/pyskl RGBPoseConv3D",
    modalities=("rgb", "pose"),
    streams=HEADS + SINGLE,
    units={UNIT: HEADS + SINGLE},
    presets=tuple(PRESETS),
    default_preset="tiny",
    adapter_version="1",
    reconstruction=True,
    summary="Two 3-D CNN pathways, one on RGB frames cropped to the pose box and one on "
    "keypoint heatmap volumes, exchanging information through bidirectional space-time "
    "cross-attention (ST-CAF, zero-initialised gates) in their two deepest stages; a head per "
    "pathway and a fused head. Single-pathway pre-training, then joint fine-tuning.",
    divergences=(
        "no upstream code: the whole network is a reconstruction on pyskl's RGBPoseConv3D "
        "(RGB 'slow' pathway + heatmap 'pose' pathway, a linear head each)",
        "ST-CAF (reconstruction): after the two deepest stage pairs, every T*H*W position a "
        "token, LayerNorm and linear projections to a shared width d, multi-head scaled "
        "dot-product cross-attention in both directions (RGB queries pose, pose queries RGB), "
        "each output projected back and added through a scalar gate initialised to 0",
        "ST-CAF token_mode=pool: the stream with more frames is average-pooled to the other's "
        "frame count before attention and its update repeated back (alternative: factorised, "
        "spatial per frame group then temporal per location)",
        "ST-CAF positional embeddings: none at tiny; learnable factorised time + space "
        "embeddings added to queries and keys at paper",
        "laterals (pyskl: concatenated) are added through zero-initialised 1x1x1 convolutions "
        "after resampling the other map to this one's T, H, W, one stage shallower than each "
        "ST-CAF, so the joint model starts as the two pre-trained pathways",
        "fused head (reconstruction): a linear head on the concatenated pooled features of both "
        "pathways; loss = the sum of the three cross-entropies",
        "schedule (pyskl default, not from the paper): RGB-only, then pose-only pre-training, "
        "then joint fine-tuning, in one process on one model; each stage selected on val by its "
        "head (fused head for the joint stage); the pre-training stages use the fine-tuning "
        "optimiser with its schedule stretched to their epochs",
        "selection on val (upstream: --test-best on whatever split the config validates on)",
        "keypoints: all 133 COCO-WholeBody channels at paper with the lower body (11-22) "
        "coordinates and scores zeroed; the 27 SAM-SLR joints at tiny",
        "heatmaps: pyskl joint mode, scores used, sigma 0.7 px at 56 x 56 scaled to the map "
        "size with a 1 px floor at tiny (0.2 px would vanish on 16 x 16 maps)",
        "clip lengths: RGB 8 frames, heatmaps 32 (paper) / 8 (tiny); RGB frames are sampled "
        "from a cache of decode_frames frames per clip spread uniformly over it (pyskl decodes "
        "the sampled frames every epoch)",
        "augmentation: random scale 0.9-1.1, rotation +-10 deg and shift +-5 % of the pose box, "
        "one transform for RGB and heatmaps (pyskl: RandomResizedCrop)",
        "horizontal flip off (a flip changes handedness; pyskl's default pipeline flips)",
        "the crop box is padded by 10 % (pyskl's PoseCompact: 25 %)",
        "test: 10 clips at paper (pyskl), 1 clip at tiny, softmax averaged over clips and "
        "stored as its log (logits whose softmax is the averaged distribution)",
        "tiny pathways: separable S3D-lite blocks, RGB stem (1,5,5) stride 2 + max-pool, pose "
        "stem (1,3,3) stride 1, one block per stage, stage strides 1,2,2,2; d = 4 x width, "
        "width / 4 heads; dropout 0.2 and Adam lr 0.02 chosen on val",
        "paper pathways: ResNet3D-50 slow RGB (inflated stages 3-4) and the (4, 6, 3) pose "
        "pathway (inflated stages 2-3), last BN of each residual block zero-initialised",
    ),
    published=(
        PublishedResult("wlasl2000", "RGB + pose (CAMFuse)", "pi@1", 53.12, _TABLE, _TUNED),
        PublishedResult("wlasl2000", "RGB + pose (CAMFuse)", "pi@5", 86.70, _TABLE, _TUNED),
        PublishedResult("wlasl2000", "RGB + pose (CAMFuse)", "pc@1", 50.91, _TABLE, _TUNED),
        PublishedResult("wlasl2000", "RGB single stream", "pi@1", 46.25, _TABLE, _TUNED),
        PublishedResult("wlasl2000", "skeleton single stream", "pi@1", 51.67, _TABLE, _TUNED),
        PublishedResult("autsl", "RGB + pose (CAMFuse)", "pi@1", 96.18, _TABLE, _TUNED),
        PublishedResult("autsl", "RGB + pose (CAMFuse)", "pi@5", 99.65, _TABLE, _TUNED),
        PublishedResult("autsl", "RGB single stream", "pi@1", 93.56, _TABLE, _TUNED),
        PublishedResult("autsl", "skeleton single stream", "pi@1", 93.24, _TABLE, _TUNED),
    ),
    fusion=FusionRecipe(
        strategy="fixed",
        score_space="probs",
        weights={"default": {"rgb": 1.0, "pose": 1.0, "fused": 1.0}},
        streams=HEADS,
        source="CAMFuse states none; pyskl sums the pathway softmaxes 1:1 (also 2:1, 1:2); "
        "slrbench adds the fused head with the same weight (design)",
        test_tuned=False,
    ),
)


def _preset_model(preset: str, num_classes: int, channels: int) -> CAMFuseConfig:
    recipe = dict(PRESETS[preset]["model"])
    if preset == "tiny":
        config = CAMFuseConfig.tiny(num_classes, in_channels=channels,
                                    width=recipe.pop("width"))
    else:
        config = CAMFuseConfig.paper(num_classes, in_channels=channels)
    return dataclasses.replace(config, **recipe)


def _build_preset(preset: str, channels: int, num_classes: int) -> nn.Module:
    return CAMFuse(_preset_model(preset, num_classes, channels))


class CAMFuseAdapter(MethodAdapter):
    spec = SPEC

    def resolve_config(self, preset: str, spec: DatasetSpec, stream: str,
                       overrides: dict[str, Any]) -> dict[str, Any]:
        check_unit(self, preset, stream, UNIT)
        recipe = PRESETS[preset]
        heatmap = HeatmapConfig(min_sigma=1.0 if preset == "tiny" else 0.0)
        data = VideoConfig(**{**recipe["data"], "heatmap": heatmap, "augment": VideoAugment(),
                              "zeroed_joints": tuple(recipe["data"].get("zeroed_joints", ()))})
        channels = get_layout(data.layout).num_nodes
        config: dict[str, Any] = {
            **unit_config(self, preset, stream, data.to_dict(),
                          _preset_model(preset, 1, channels), recipe["train"]),
            "pretrain": {"epochs": recipe["pretrain_epochs"]},
            "loss": {"rgb": 1.0, "pose": 1.0, "fused": 1.0},
            "test_protocol": {"clips": recipe["test_clips"], "average": "prob", "flip": False},
            "decisions": [
                "camfuse.base=rgbposeconv3d",
                "camfuse.stcaf=bidirectional_cross_attention_zero_gates",
                "camfuse.laterals=added_zero_init",
                f"camfuse.keypoints={data.layout}",
                "camfuse.lower_body=zeroed_with_scores",
                "camfuse.schedule=rgb_then_pose_then_joint",
                "camfuse.selection=val",
                "camfuse.flip=off",
                "camfuse.box_padding=0.1",
            ],
        }
        # `--epochs N` shortens every stage alike unless the pre-training is set on its own.
        if "train.epochs" in overrides and "pretrain.epochs" not in overrides:
            overrides = {**overrides, "pretrain.epochs": overrides["train.epochs"]}
        return apply_overrides(config, overrides)

    def build_model(self, config: dict[str, Any], num_classes: int) -> nn.Module:
        return CAMFuse(CAMFuseConfig.from_dict({**config["model"], "num_classes": num_classes}))

    def stream_data(self, dataset: Dataset, config: dict[str, Any], seed: int) -> StreamData:
        return video_stream_data(dataset, self.spec.name, config["data"], seed,
                                 test_clips=int(config["test_protocol"]["clips"]))

    # -- the multi-head, multi-stage contract ------------------------------------------------
    def heads(self, config: dict[str, Any]) -> tuple[str, ...]:
        fused = bool(config["model"].get("fused_head", True))
        return (HEADS if fused else HEADS[:2]) + SINGLE

    def stages(self, config: dict[str, Any]) -> tuple[Stage, ...]:
        # The pre-training stages take the fine-tuning's optimiser, its schedule stretched.
        pretrain = {**config["train"], **config["pretrain"]}
        rescale_schedule(pretrain, int(config["train"]["epochs"]), {})
        joint_head = "fused" if "fused" in self.heads(config) else "rgb"
        return (Stage("rgb", pretrain, ("rgb",), "rgb", stores={"rgb": "rgb_only"}),
                Stage("pose", pretrain, ("heatmap",), "pose", stores={"pose": "pose_only"}),
                Stage("joint", config["train"], ("rgb", "heatmap"), joint_head))

    def head_parameters(self, model: nn.Module, stream: str, config: dict[str, Any]) -> int:
        """A single-pathway stream uses its pathway and head only."""
        assert isinstance(model, CAMFuse)
        pathway = {"rgb_only": "rgb", "pose_only": "pose"}.get(stream)
        if pathway is None:
            return super().head_parameters(model, stream, config)
        return sum(p.numel() for p in model.pathway_parameters(pathway))

    def prediction_modalities(self, config: dict[str, Any]) -> tuple[str, ...]:
        return ("rgb", "heatmap")

    def training_loss(self, model: nn.Module, inputs: Any, targets: Tensor, epoch: int,
                      config: dict[str, Any], stage: Stage) -> tuple[Tensor, Tensor]:
        outputs = model(**inputs)
        smoothing = float(stage.train.get("label_smoothing", 0.0))
        weights = config["loss"]
        loss = sum(float(weights[head]) * functional.cross_entropy(
            logits.float(), targets, label_smoothing=smoothing)
            for head, logits in outputs.items())
        assert isinstance(loss, Tensor)
        return loss, outputs[stage.select_on or "fused"]

    def predict_heads(self, model: nn.Module, inputs: Any, config: dict[str, Any],
                      stage: Stage | None = None) -> dict[str, Tensor]:
        """Every clip of the test protocol through the model; per head the log of the mean
        softmax over clips (pyskl's average_clips='prob', kept in logit space)."""
        probs = clip_probabilities(lambda flat: model(**flat), inputs)
        return {head: log_probabilities(p) for head, p in probs.items()}

    def describe_inputs(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**input_shapes(config), "test_clips": int(config["test_protocol"]["clips"])}

    def example_inputs(self, config: dict[str, Any], batch: int, train: bool,
                       device: torch.device) -> dict[str, Tensor]:
        shapes = self.describe_inputs(config)
        lead = [batch] if train else [batch, shapes["test_clips"]]  # test: clips per sample
        return {name: torch.randn(*lead, *shapes[name], device=device)
                for name in ("rgb", "heatmap")}

    def describe_presets(self) -> list[dict[str, Any]]:
        rows = []
        for preset, recipe in PRESETS.items():
            channels = get_layout(recipe["data"]["layout"]).num_nodes
            build = functools.partial(_build_preset, preset, channels)
            rows.append({
                "preset": preset,
                "params": parameter_counts(build, classes=(20, 2000), meta=True),
                "frames": f"RGB {recipe['data']['rgb_frames']} x {recipe['data']['rgb_size']}², "
                          f"heatmaps {recipe['data']['pose_frames']} x "
                          f"{recipe['data']['heatmap_size']}², {channels} keypoints",
                "recipe": f"{recipe['pretrain_epochs']} + {recipe['pretrain_epochs']} "
                          f"pre-training, then {recipe_text(recipe['train'])}",
            })
        return rows
