"""NLA-SLR as a benchmark method: presets, the video pipeline settings, the language-aware
training loss, the EMA coupling and published facts (docs/methods/nla.md). The network lives in
`slrbench.methods.nla` (VKNet), the losses in `slrbench.methods.nla_losses`, the gloss vectors
in `slrbench.datasets.gloss_vectors`.

One training unit, `vknet`, gives nine streams: the seven heads of VKNet and the two in-network
ensembles NLA-SLR predicts with (`ensemble_last`: the three fuse heads, `ensemble_all`: all
seven; log of the summed softmax).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from slrbench.config import apply_overrides
from slrbench.datasets.base import Dataset, DatasetSpec
from slrbench.datasets.gloss_vectors import (
    SHIPPED_SOURCE,
    GlossVectors,
    class_vectors,
    gloss_similarity,
)
from slrbench.datasets.heatmaps import HeatmapConfig
from slrbench.datasets.layouts import get_layout
from slrbench.datasets.video import VideoAugment, VideoConfig
from slrbench.errors import SlrbenchError
from slrbench.methods.base import (
    FusionRecipe,
    MethodAdapter,
    MethodSpec,
    PublishedResult,
    Stage,
    StreamData,
)
from slrbench.methods.nla import VKNet, VKNetConfig
from slrbench.methods.nla_losses import (
    ema_beta,
    ema_update,
    imm_targets,
    imm_weight,
    input_mixup,
    language_aware_targets,
    mixed_targets,
    soft_cross_entropy,
    uniform_targets,
)
from slrbench.methods.skeleton_adapter import parameter_counts, recipe_text
from slrbench.methods.video_adapter import (
    check_unit,
    clip_probabilities,
    input_shapes,
    log_probabilities,
    unit_config,
    video_stream_data,
)

UNIT = "vknet"
HEADS = ("rgb_h", "rgb_l", "kp_h", "kp_l", "fuse", "fuse_h", "fuse_l")
FUSE_HEADS = ("fuse", "fuse_h", "fuse_l")
ENSEMBLES = {"ensemble_last": FUSE_HEADS, "ensemble_all": HEADS}
STREAMS = HEADS + tuple(ENSEMBLES)
SMOOTHING = ("language_aware", "uniform", "none")
# NLA-SLR's full-map Gaussians: σ = 8 px on a 256 x 256 map, scores ignored, no window. As a
# HeatmapConfig, σ is given at the 56 px reference size: 8 · 56 / 256.
NLA_HEATMAP = HeatmapConfig(sigma=8 * 56 / 256, use_score=False, min_score=0.0, truncate=None)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        # A 12-frame window of the 16-frame cache CAMFuse also reads, and lr 3e-3 over 8
        # epochs: chosen on val within the 2-minute budget (docs/methods/nla.md#presets).
        "data": {"rgb_size": 64, "rgb_frames": 12, "pose_frames": 12, "low_frames": 6,
                 "heatmap_size": 32, "decode_size": 64, "decode_frames": 16},
        "model": {"width": 8, "gloss_dim": 50},
        "train": {"epochs": 8, "batch_size": 16, "optimizer": "adam", "lr": 3e-3,
                  "weight_decay": 1e-3, "warmup_epochs": 0, "schedule": "cosine",
                  "eval_batch_size": 32},
        "windows": ["central"],
    },
    "paper": {
        "data": {"rgb_size": 224, "rgb_frames": 64, "pose_frames": 64, "low_frames": 32,
                 "heatmap_size": 112, "decode_size": 256, "decode_frames": 128},
        "model": {"gloss_dim": 300},
        # sync_bn: upstream trains with SyncBatchNorm on 8 GPUs; it takes effect when the
        # run is distributed (docs/distributed.md) and changes nothing in one process.
        "train": {"epochs": 100, "batch_size": 32, "optimizer": "adam", "lr": 1e-3,
                  "weight_decay": 1e-3, "warmup_epochs": 0, "schedule": "cosine",
                  "eval_batch_size": 8, "sync_bn": True},
        "windows": ["start", "end", "central"],
    },
}

_README = "[R] FangyunWei/SLRT NLA-SLR/README.md"
_DEV = "dev (best epoch of ensemble_last)"

SPEC = MethodSpec(
    name="nla",
    title="NLA-SLR: VKNet with language-aware label smoothing and inter-modality mixup",
    paper="Zuo, Wei, Mak, Natural Language-Assisted Sign Language Recognition, CVPR 2023",
    upstream="FangyunWei/SLRT (folder NLA-SLR/)",
    modalities=("rgb", "pose"),
    streams=STREAMS,
    units={UNIT: STREAMS},
    gloss_vectors=True,
    epoch_cost=8.0,  # a tiny epoch: about 16 s against a skeleton stream's 2 s (1 thread)
    presets=tuple(PRESETS),
    default_preset="tiny",
    adapter_version="1",
    summary="Four S3D streams (RGB and keypoint heatmaps, each at a high and a low frame rate) "
    "with bidirectional laterals, seven linear heads; trained with language-aware label "
    "smoothing from gloss-vector similarity and inter-modality mixup of visual features with "
    "mapped gloss vectors, whose classifier is EMA-coupled to the main one; input mixup.",
    divergences=(
        "the four upstream stages (single streams, two-stream nets, VKNet) are one joint run at "
        "tiny (the methods notes' tiny schedule); paper keeps one joint run too and needs "
        "upstream's stage chain to be run by the user through --init",
        "the inter-modality mixup weight and the EMA keep-rate follow the run's configured "
        "epoch count (upstream hard-codes 100)",
        "inter-modality mixup uses every gloss without ranking them (upstream ranks by the "
        "head's logits and keeps topk = vocabulary size: the same loss)",
        "gloss vectors: GloVe 6B 50-d shipped with slrbench (multi-word glosses as the mean of "
        "their tokens) instead of fastText crawl-300d-2M-subword; a user's fastText .vec file "
        "gives the paper's vectors",
        "crops per sample, not per batch, and no colour jitter",
        "input mixup draws from torch's generator (resumable), per batch as upstream",
        "Adam betas (0.9, 0.999) (upstream: (0.9, 0.998))",
        "RGB frames are taken from the decoded-frame cache (decode_frames frames per clip "
        "spread uniformly over it), so a window is a window of that grid, not of consecutive "
        "video frames",
        "heatmaps drawn at the map size in the crop's coordinates (upstream draws 256 x 256 "
        "maps on the full frame, crops and resizes); same Gaussian, scores ignored",
        "selection on val (upstream: dev, the same thing under another name)",
    ),
    published=(
        PublishedResult("wlasl2000", "VKNet + LALS + IMM", "pi@1", 61.26, _README, _DEV),
        PublishedResult("wlasl2000", "VKNet + LALS + IMM", "pi@5", 91.77, _README, _DEV),
        PublishedResult("wlasl2000", "VKNet + LALS + IMM", "pc@1", 58.31, _README, _DEV),
        PublishedResult("wlasl1000", "VKNet + LALS + IMM", "pi@1", 75.64, _README, _DEV),
        PublishedResult("wlasl300", "VKNet + LALS + IMM", "pi@1", 86.98, _README, _DEV),
        PublishedResult("wlasl100", "VKNet + LALS + IMM", "pi@1", 92.64, _README, _DEV),
        PublishedResult("msasl1000", "VKNet + LALS + IMM", "pi@1", 73.80, _README, _DEV),
        PublishedResult("msasl500", "VKNet + LALS + IMM", "pi@1", 82.90, _README, _DEV),
        PublishedResult("msasl200", "VKNet + LALS + IMM", "pi@1", 89.48, _README, _DEV),
        PublishedResult("msasl100", "VKNet + LALS + IMM", "pi@1", 91.02, _README, _DEV),
        PublishedResult("nmfs-csl", "VKNet, plain label smoothing", "pi@1", 83.7, _README, _DEV),
    ),
    fusion=FusionRecipe(
        strategy="fixed",
        score_space="probs",
        weights={"default": dict.fromkeys(FUSE_HEADS, 1.0)},
        source="upstream ensemble_last: equal softmax sum of the three fuse heads",
        streams=FUSE_HEADS,
    ),
)


def _model_config(preset: str, num_classes: int) -> VKNetConfig:
    recipe = dict(PRESETS[preset]["model"])
    channels = get_layout("nlaslr_63").num_nodes
    if preset == "tiny":
        return VKNetConfig.tiny(num_classes, in_channels=channels, width=recipe["width"],
                                gloss_dim=recipe["gloss_dim"])
    return VKNetConfig.paper(num_classes, in_channels=channels, gloss_dim=recipe["gloss_dim"])


def _build_preset(preset: str, num_classes: int) -> nn.Module:
    return VKNet(_model_config(preset, num_classes))


def gloss_table(config: dict[str, Any], classes: tuple[str, ...]) -> GlossVectors:
    """The run's gloss vectors (config `language.vectors`: "shipped" or a fastText file),
    checked against the digest resolve_config recorded: a file replaced between planning and
    training must not train silently on other vectors."""
    language = config["language"]
    table = class_vectors(language["vectors"], classes)
    recorded = language.get("vectors_sha256")
    if recorded is not None and recorded != vectors_digest(table):
        raise SlrbenchError(f"--word-vectors {language['vectors']}: the gloss vectors changed "
                            "since the run was planned; expected the same file (run again)")
    return table


def vectors_digest(table: GlossVectors) -> str:
    return hashlib.sha256(np.ascontiguousarray(table.vectors, dtype=np.float32).tobytes()
                          ).hexdigest()


class NLAAdapter(MethodAdapter):
    spec = SPEC

    def resolve_config(self, preset: str, spec: DatasetSpec, stream: str,
                       overrides: dict[str, Any]) -> dict[str, Any]:
        check_unit(self, preset, stream, UNIT)
        recipe = PRESETS[preset]
        data = VideoConfig(layout="nlaslr_63", box="frame", sampling="window",
                           heatmap=NLA_HEATMAP, channels_last=True,
                           augment=VideoAugment(mode="resized_crop", area=(0.7, 1.0),
                                                aspect=(0.75, 1.3)), **recipe["data"])
        config: dict[str, Any] = {
            **unit_config(self, preset, stream, data.to_dict(), _model_config(preset, 1),
                          recipe["train"]),
            "language": {
                "label_smoothing": "language_aware",  # or "uniform", "none"
                "epsilon": 0.2, "tau": 0.5,
                "imm": True, "imm_weight": 1.0, "ema": True,
                "input_mixup": True, "mixup_probability": 0.75, "mixup_alpha": 0.8,
                # "shipped" (GloVe 6B 50-d) or a fastText .vec / .bin file (--word-vectors);
                # resolved below into the source, the glosses without a vector and a digest.
                "vectors": SHIPPED_SOURCE,
            },
            "test_protocol": {"windows": recipe["windows"], "average": "prob", "flip": False},
            "decisions": [
                "nla.stages=one_joint_run",
                "nla.vectors=token_mean",
                "nla.imm_schedule=configured_epochs",
                "nla.crops=per_sample",
                "nla.selection=val",
            ],
        }
        return self._resolve_language(apply_overrides(config, overrides), spec, overrides)

    def _resolve_language(self, config: dict[str, Any], spec: DatasetSpec,
                          overrides: dict[str, Any]) -> dict[str, Any]:
        """Record what the language part will use, and fall back to NLA-SLR's NMFs-CSL recipe
        (plain smoothing, no inter-modality mixup) when no gloss has a vector, unless the user
        asked for the language-aware parts by name."""
        language = config["language"]
        kind = language["label_smoothing"]
        if kind not in SMOOTHING:
            raise SlrbenchError(f"language.label_smoothing: found {kind!r}; expected one of "
                                f"{', '.join(SMOOTHING)}")
        table = class_vectors(language["vectors"], spec.classes)
        language.update(vectors_source=table.source, missing_glosses=list(table.missing),
                        vectors_sha256=vectors_digest(table))
        if len(table.missing) == len(spec.classes):
            for key, off in (("label_smoothing", "uniform"), ("imm", False)):
                if f"language.{key}" in overrides and language[key] != off:
                    raise SlrbenchError(
                        f"language.{key}: found {language[key]!r} for {spec.name}, none of "
                        f"whose {len(spec.classes)} glosses has a vector in "
                        f"{table.source}; expected {off!r} or --word-vectors PATH with vectors "
                        "for its glosses")
            if kind == "language_aware":
                language["label_smoothing"] = "uniform"
            language["imm"] = False
            config["decisions"].append("nla.no_gloss_vectors=plain_smoothing_no_imm")
        # The mixup units exist only where they are trained, sized to the vectors.
        config["model"]["language"] = bool(language["imm"])
        config["model"]["gloss_dim"] = int(table.vectors.shape[1])
        return config

    def build_model(self, config: dict[str, Any], num_classes: int) -> nn.Module:
        model = VKNet(VKNetConfig.from_dict({**config["model"], "num_classes": num_classes}))
        vectors = getattr(self, "vectors", None)  # set by stream_data, which the runner calls first
        if vectors is not None and vectors.shape[0] == num_classes:
            model.set_gloss_vectors(vectors)
        return model

    def stream_data(self, dataset: Dataset, config: dict[str, Any], seed: int) -> StreamData:
        data = video_stream_data(dataset, self.spec.name, config["data"], seed,
                                 test_windows=tuple(config["test_protocol"]["windows"]))
        self._language_tables(config, dataset.spec)
        return data

    # -- language ------------------------------------------------------------------------------
    def _language_tables(self, config: dict[str, Any], spec: DatasetSpec) -> None:
        """The gloss vectors and their similarity for this dataset's classes (kept on the
        adapter: the loss and the model's mixup read them); None when no gloss has one."""
        table = gloss_table(config, spec.classes)
        if len(table.missing) == len(spec.classes):
            self.vectors, self.similarity = None, None
            return
        self.vectors = torch.from_numpy(table.vectors)
        self.similarity = torch.from_numpy(gloss_similarity(table.vectors))

    def _targets(self, labels: Tensor, num_classes: int, config: dict[str, Any]) -> Tensor:
        language = config["language"]
        kind = language["label_smoothing"]
        similarity: Tensor | None = getattr(self, "similarity", None)
        if kind == "language_aware":
            assert similarity is not None, "resolve_config turns it off without vectors"
            return language_aware_targets(similarity.to(labels.device), labels,
                                          float(language["epsilon"]), float(language["tau"]))
        if kind == "none":
            return functional.one_hot(labels, num_classes).float()
        return uniform_targets(labels, num_classes, float(language["epsilon"]))

    # -- the contract --------------------------------------------------------------------------
    def heads(self, config: dict[str, Any]) -> tuple[str, ...]:
        return STREAMS

    def stages(self, config: dict[str, Any]) -> tuple[Stage, ...]:
        return (Stage("joint", config["train"], ("rgb", "heatmap"), "ensemble_last"),)

    def prediction_modalities(self, config: dict[str, Any]) -> tuple[str, ...]:
        return ("rgb", "heatmap")

    def training_loss(self, model: nn.Module, inputs: Any, targets: Tensor, epoch: int,
                      config: dict[str, Any], stage: Stage) -> tuple[Tensor, Tensor]:
        language = config["language"]
        epochs = int(stage.train["epochs"])
        partner, lam = None, 1.0
        if language["input_mixup"]:
            inputs, partner, lam = input_mixup(inputs, None, float(language["mixup_probability"]),
                                               float(language["mixup_alpha"]))
        output = model(**inputs)
        logits: dict[str, Tensor] = output["logits"]
        k = next(iter(logits.values())).shape[1]
        soft = self._targets(targets, k, config)
        if partner is not None:
            soft = mixed_targets(soft, soft[partner], lam)
        loss = torch.stack([soft_cross_entropy(v, soft) for v in logits.values()]).sum()
        if language["imm"] and getattr(model, "language", False):
            weight = imm_weight(epoch, epochs, float(language["imm_weight"]))
            mix = imm_targets(targets, k, None if partner is None else targets[partner], lam)
            assert isinstance(model, VKNet)
            loss = loss + weight * torch.stack([
                soft_cross_entropy(model.imm_unit(h)(output["features"][h]), mix)
                for h in logits]).sum()
        return loss, logits["fuse"]

    def after_step(self, model: nn.Module, epoch: int, config: dict[str, Any],
                   stage: Stage) -> None:
        if not (config["language"]["ema"] and config["language"]["imm"]):
            return
        assert isinstance(model, VKNet)
        beta = ema_beta(epoch, int(stage.train["epochs"]))
        for head in HEADS:
            ema_update(model.main_classifier(head), model.word_classifier(head), beta)

    def predict_heads(self, model: nn.Module, inputs: Any, config: dict[str, Any],
                      stage: Stage | None = None) -> dict[str, Tensor]:
        """Every test window through the model; per head the log of the softmax averaged over
        the windows, and the two ensembles (log of the summed averaged softmax)."""
        probs = clip_probabilities(lambda flat: model(**flat)["logits"], inputs)
        out = {h: log_probabilities(p) for h, p in probs.items()}
        for name, members in ENSEMBLES.items():
            out[name] = log_probabilities(torch.stack([probs[h] for h in members]).sum(0))
        return out

    def describe_inputs(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**input_shapes(config), "low_frames": config["data"]["low_frames"],
                "test_windows": len(config["test_protocol"]["windows"])}

    def example_inputs(self, config: dict[str, Any], batch: int, train: bool,
                       device: torch.device) -> dict[str, Tensor]:
        shapes = self.describe_inputs(config)
        lead = [batch] if train else [batch, shapes["test_windows"]]
        out = {}
        for name in ("rgb", "heatmap"):
            c, _, h, w = shapes[name]
            out[name] = torch.randn(*lead, *shapes[name], device=device)
            out[f"{name}_low"] = torch.randn(*lead, c, shapes["low_frames"], h, w, device=device)
        return out

    def describe_presets(self) -> list[dict[str, Any]]:
        rows = []
        for preset, recipe in PRESETS.items():
            data = recipe["data"]
            rows.append({
                "preset": preset,
                "params": parameter_counts(functools.partial(_build_preset, preset),
                                           classes=(20, 2000), meta=True),
                "frames": f"RGB {data['rgb_frames']}/{data['low_frames']} x "
                          f"{data['rgb_size']}², heatmaps {data['heatmap_size']}², 63 keypoints",
                "recipe": recipe_text(recipe["train"]),
            })
        return rows
