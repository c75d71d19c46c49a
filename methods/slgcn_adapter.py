"""SL-GCN as a benchmark method: presets, recipe, per-epoch schedules and published facts
(docs/methods/slgcn.md). The network itself lives in `slrbench.methods.slgcn`.
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from slrbench.config import apply_overrides
from slrbench.datasets.base import DatasetSpec
from slrbench.methods.base import FusionRecipe, MethodSpec, PublishedResult
from slrbench.methods.skeleton_adapter import (
    LINEAGE_DIVERGENCES,
    TINY_TRAIN,
    SkeletonAdapter,
    augment_section,
    parameter_counts,
    recipe_text,
    stored_text,
    train_section,
)
from slrbench.methods.slgcn import PRESETS, SLGCN, SLGCNConfig

LAYOUT = "samslr_27"
STREAMS = ("j", "b", "jm", "bm")

# Per preset: stored / train-crop length and the training recipe
# (docs/methods/slgcn.md#training-recipe).
# Paper crop is 120 for the WLASL/CSL joint stream and 100 otherwise; slrbench uses 100.
# Tiny is sized for the README main job (docs/methods/slgcn.md#training-recipe): every other
# frame, 12 epochs of Adam: 4.3x less training than the former 30-epoch SGD recipe, test top-1
# inside or above that recipe's 95 % CI on 13 of 16 streams
# (docs/PERFORMANCE.md#tiny-recipe-before-and-after).
RECIPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "frame_step": 2,
        "t_store": 20,
        "window": 16,
        "train": TINY_TRAIN,
    },
    "paper": {
        "t_store": 150,
        "window": 100,
        "train": {
            "epochs": 250,
            "batch_size": 64,
            "lr": 0.1,
            "warmup_epochs": 20,
            "schedule": "step",
            "milestones": [150, 200],
            "gamma": 0.1,
            "weight_decay": 1e-4,
        },
    },
}

_V2_IMAGE = "[R] SAM-SLR-v2 README image"
_RESCORED = "[V] released score files, re-scored"
# Upstream evaluates the configured test loader every epoch and keeps the best epoch; the
# fusion weights are hand-set. AUTSL test labels were withheld during the challenge.
_EPOCH_ON_EVAL = "evaluated split (best epoch)"
_AUTSL_CLEAN = "val (test labels withheld)"

SPEC = MethodSpec(
    name="slgcn",
    title="SL-GCN (SAM-SLR skeleton network)",
    paper="Jiang et al., Skeleton Aware Multi-modal Sign Language Recognition, CVPRW 2021; "
    "Sign Language Recognition via Skeleton-Aware Multi-Model Ensemble, arXiv 2110.06161",
    upstream="jackyjsy/CVPR21Chal-SLR @ de6c53a, jackyjsy/SAM-SLR-v2 @ ef0ab36 (SL-GCN/)",
    modalities=("pose",),
    streams=STREAMS,
    presets=tuple(RECIPES),
    default_preset="tiny",
    adapter_version="1",
    summary="Decoupled spatial-temporal GCN over 27 whole-body joints with STC attention, "
    "DropGraph and DropBlockT; one model per stream (joint, bone, joint motion, bone motion), "
    "fused by a weighted logit sum. Common ancestor of DSTA-SLR and LGF-SLR.",
    divergences=(
        "checkpoint selected on val every epoch (upstream keeps the best epoch on the reported "
        "split)",
        "flip width x -> W - x uses the dataset's frame width (upstream hard-codes 512)",
        "random shift range scaled to 10 * W / 512 px (upstream: 10 px for 512-px AUTSL frames)",
        "paper crop window 100 for every stream (upstream: 120 for the WLASL/CSL joint stream)",
        "keep-probability decays over the first 40 % of the epochs (upstream: 100 of 250)",
        "streams are derived in the data pipeline from the joints (upstream: offline .npy files); "
        "same definitions, including the motion jump across the loop-padding seam",
        "one device with BatchNorm statistics over the whole batch (upstream: nn.DataParallel on "
        "2-4 GPUs, so BatchNorm statistics are per shard of 16-32 samples)",
        *LINEAGE_DIVERGENCES,
    ),
    published=(
        PublishedResult("wlasl2000", "4-stream fusion", "pi@1", 51.50, _V2_IMAGE, _EPOCH_ON_EVAL,
                        "†‡"),
        PublishedResult("wlasl2000", "4-stream fusion", "pi@5", 84.94, _V2_IMAGE, _EPOCH_ON_EVAL,
                        "†‡"),
        PublishedResult("wlasl2000", "4-stream fusion", "pc@1", 48.87, _V2_IMAGE, _EPOCH_ON_EVAL,
                        "†‡"),
        PublishedResult("wlasl2000", "joint stream", "pi@1", 45.61,
                        "[R] result-file name (epoch 222)", _EPOCH_ON_EVAL, "†‡"),
        PublishedResult("autsl", "4-stream, train-only, weights 1/0.9/0.5/0.5", "pi@1", 96.47,
                        _RESCORED, _AUTSL_CLEAN),
        PublishedResult("autsl", "joint stream, train-only", "pi@1", 95.35, _RESCORED,
                        _AUTSL_CLEAN),
        PublishedResult("slr500", "keypoints (SL-GCN)", "pi@1", 98.16, "[R] SAM-SLR README image",
                        _EPOCH_ON_EVAL, "†"),
    ),
    fusion=FusionRecipe(
        strategy="fixed",
        score_space="logits",
        weights={"default": {"j": 1.0, "b": 0.9, "jm": 0.5, "bm": 0.5}},
        source="CVPR21Chal-SLR ensemble/gcn/ensemble_wo_val.py; "
        "SAM-SLR-v2 SL-GCN/ensemble/ensemble.py",
        # hand-set upstream and reused unchanged across datasets (a clean baseline,
        # docs/methods/slgcn.md#default-fusion)
        test_tuned=False,
    ),
)


class SLGCNAdapter(SkeletonAdapter):
    spec = SPEC
    model_family = "slgcn"

    def resolve_config(
        self, preset: str, spec: DatasetSpec, stream: str, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        self.check_preset(preset)
        recipe = RECIPES[preset]
        config: dict[str, Any] = {
            "method": SPEC.name,
            "preset": preset,
            "stream": stream,
            "model": PRESETS[preset].to_dict(),
            "data": {
                "layout": LAYOUT,
                "stream": stream,
                "frame_step": recipe.get("frame_step", 1),
                "t_store": recipe["t_store"],
                "augment": augment_section(spec, recipe["window"]),
            },
            "train": train_section(recipe["train"]),
            "schedule": {
                "keep_prob_end": 0.9,
                "keep_prob_decay_fraction": 0.4,
                "adjacency_frozen_epochs": 1,  # upstream only_train_epoch
            },
            "test_protocol": {
                "clips": 1, "frames": f"all {recipe['t_store']} stored", "flip": False
            },
            "decisions": [
                "slgcn.selection=val",
                "slgcn.flip_width=dataset",
                "slgcn.shift=scaled_to_frame",
                "slgcn.streams=derived_in_pipeline",
            ],
        }
        return apply_overrides(config, overrides)

    def build_model(self, config: dict[str, Any], num_classes: int) -> nn.Module:
        return SLGCN(num_classes, config["data"]["layout"], SLGCNConfig.from_dict(config["model"]))

    def on_epoch_start(self, model: nn.Module, epoch: int, config: dict[str, Any]) -> None:
        assert isinstance(model, SLGCN)
        model.set_adjacency_trainable(epoch >= config["schedule"]["adjacency_frozen_epochs"])

    def describe_presets(self) -> list[dict[str, Any]]:
        rows = []
        for preset, recipe in RECIPES.items():
            rows.append(
                {
                    "preset": preset,
                    "params": parameter_counts(
                        functools.partial(SLGCN, layout=LAYOUT, config=PRESETS[preset])
                    ),
                    "frames": f"{stored_text(recipe)} / train crop {recipe['window']}",
                    "recipe": recipe_text(recipe["train"]),
                }
            )
        return rows
