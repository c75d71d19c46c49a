"""Shared data side of the skeleton methods (SL-GCN, DSTA-SLR, LGF-SLR): pose arrays ->
layout conversion -> stored stream arrays (N, C, T, V, 1) -> `SkeletonFeeder` per split.

The config's "data" section says everything the pipeline does, so it is hashed into the record:
``{"layout", "stream", "t_store", "augment": AugmentConfig fields}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from slrbench.datasets.base import SPLITS, Dataset, DatasetSpec, PoseArrays
from slrbench.datasets.layouts import get_layout
from slrbench.datasets.skeleton import (
    AugmentConfig,
    SkeletonFeeder,
    prepare_stream_arrays,
    subsample_frames,
)
from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodAdapter, StreamData
from slrbench.methods.blocks.gcn import count_trainable_parameters, keep_prob_schedule
from slrbench.training.loop import TrainConfig

# Divergences every SAM-SLR-lineage adapter shares (they come from the shared training loop,
# feeder and drop blocks); each method's card lists them after its own.
LINEAGE_DIVERGENCES: tuple[str, ...] = (
    "the last partial training batch is kept (upstream: drop_last=True)",
    "fp16 autocast (AMP) on CUDA by default, train.amp=false for fp32; upstream trains in fp32 "
    "(CPU runs are fp32 in both)",
    "horizontal flip with probability flip_prob (upstream flips when random() > p, i.e. with "
    "probability 1 - p; identical at the default p = 0.5)",
    "DropGraph / DropBlockT guards: when every joint (or frame) of the whole batch is dropped, "
    "or a feature map is all zero, the output is zeros (upstream divides by zero: inf / NaN)",
    "augmentation and frame sampling draw from per-(seed, epoch, sample) generators "
    "(upstream: the global RNG), so results do not depend on loader workers",
)

# Upstream's flip width and shift range are in 512-px AUTSL pixels; slrbench scales the shift
# with the dataset's frame width so the augmentation is the same fraction of the frame.
UPSTREAM_FRAME_WIDTH = 512.0
UPSTREAM_SHIFT_PX = 10.0


def frame_width(spec: DatasetSpec) -> float:
    if spec.frame_size is None:
        raise SlrbenchError(
            f"dataset {spec.name}: frame_size is missing; expected (width, height) of the pose "
            "pixel coordinates (the flip x -> W - x needs W)"
        )
    return float(spec.frame_size[0])


# The tiny training recipe shared by SL-GCN, DSTA-SLR and LGF-SLR's streams
# (docs/methods/slgcn.md#training-recipe): sized for the README main job.
TINY_TRAIN: dict[str, Any] = {
    "epochs": 12,
    "batch_size": 16,
    "optimizer": "adam",
    "lr": 3e-3,
    "warmup_epochs": 1,
    "schedule": "cosine",
    "weight_decay": 1e-4,
}


def augment_section(spec: DatasetSpec, window: int | None, **changes: Any) -> dict[str, Any]:
    """The SAM-SLR feeder augmentation with the flip width from the dataset
    (docs/methods/samslr-pipeline.md#feeder-augmentation)."""
    width = frame_width(spec)
    values: dict[str, Any] = {
        "window": window,
        "flip_prob": 0.5,
        "shift_px": round(UPSTREAM_SHIFT_PX * width / UPSTREAM_FRAME_WIDTH, 4),
        "frame_width": width,
        "center": True,
    }
    values.update(changes)
    return AugmentConfig(**values).to_dict()


def train_section(recipe: dict[str, Any]) -> dict[str, Any]:
    """Every field of the training configuration, the recipe's values over the defaults: the
    record shows the whole training setup, and any field can be overridden (`train.amp=false`)."""
    return TrainConfig.from_dict(recipe).to_dict()


def parameter_counts(build: Callable[[int], nn.Module],
                     classes: tuple[int, ...] = (20, 226, 2000), meta: bool = False) -> str:
    """`slrbench methods NAME` cell: trainable parameters of `build(K)` for a few K. `meta`:
    build on torch's meta device (shapes only, no memory: the 131 M-parameter video models)."""
    def count(k: int) -> int:
        if not meta:
            return count_trainable_parameters(build(k))
        with torch.device("meta"):
            return count_trainable_parameters(build(k))

    return ", ".join(f"{count(k):,} (K={k})" for k in classes)


def stored_text(recipe: dict[str, Any]) -> str:
    """How many frames a preset stores, and at which rate when it subsamples."""
    step = int(recipe.get("frame_step", 1))
    rate = f"1 in {step} frames, " if step > 1 else ""
    return f"{rate}store {recipe['t_store']}"


def recipe_text(train: dict[str, Any]) -> str:
    optimizer = {"sgd": "SGD", "adam": "Adam"}.get(train.get("optimizer", "sgd"), "SGD")
    return f"{train['epochs']} epochs, batch {train['batch_size']}, {optimizer} lr {train['lr']}"


def check_pose(dataset: Dataset, method: str) -> None:
    if "pose" not in dataset.spec.modalities:
        raise SlrbenchError(
            f"--dataset {dataset.spec.name}: modalities {', '.join(dataset.spec.modalities)}; "
            f"method '{method}' expected pose keypoints"
        )


class SkeletonAdapter(MethodAdapter):
    """Adapters over pose keypoints and SL-GCN-family models (``model(x, keep_prob)``).
    Subclasses with their own sampling set `feeder_class` and `feeder_options`."""

    feeder_class: type[SkeletonFeeder] = SkeletonFeeder

    def feeder_options(self, data_config: dict[str, Any]) -> dict[str, Any]:
        """Extra keyword arguments of `feeder_class` taken from the data config."""
        return {}

    def pose(self, dataset: Dataset, data_config: dict[str, Any], split: str) -> PoseArrays:
        """The split's keypoints at the configured frame rate (``data.frame_step``)."""
        return subsample_frames(dataset.pose(split), int(data_config.get("frame_step", 1)))

    def stream_arrays(
        self, dataset: Dataset, data_config: dict[str, Any], split: str
    ) -> np.ndarray:
        pose = self.pose(dataset, data_config, split)
        return prepare_stream_arrays(
            pose.data,
            pose.lengths,
            pose.layout,
            data_config["layout"],
            data_config["stream"],
            int(data_config["t_store"]),
        )

    def feeder(
        self,
        arrays: np.ndarray,
        labels: np.ndarray,
        data_config: dict[str, Any],
        train: bool,
        seed: int,
    ) -> SkeletonFeeder:
        return self.feeder_class(
            arrays,
            labels,
            data_config["layout"],
            data_config["stream"],
            train=train,
            aug=AugmentConfig(**data_config["augment"]),
            seed=seed,
            **self.feeder_options(data_config),
        )

    def keep_prob(self, epoch: int, config: dict[str, Any]) -> float:
        """DropGraph/DropBlockT keep probability: 1.0 decaying linearly to keep_prob_end over
        the first keep_prob_decay_fraction of the epochs."""
        schedule = config["schedule"]
        decay = max(1, round(schedule["keep_prob_decay_fraction"] * config["train"]["epochs"]))
        return keep_prob_schedule(epoch, 1.0, schedule["keep_prob_end"], decay)

    def forward(
        self, model: nn.Module, inputs: torch.Tensor, epoch: int, config: dict[str, Any]
    ) -> torch.Tensor:
        keep = 1.0 if epoch < 0 else self.keep_prob(epoch, config)  # epoch -1: prediction
        return model(inputs, keep)

    def describe_inputs(self, config: dict[str, Any]) -> dict[str, Any]:
        data = config["data"]
        t_eval = int(data["t_store"])
        return {"channels": 3,
                "frames_train": int((data.get("augment") or {}).get("window") or t_eval),
                "frames_eval": t_eval, "joints": get_layout(data["layout"]).num_nodes}

    def example_inputs(self, config: dict[str, Any], batch: int, train: bool,
                       device: torch.device) -> torch.Tensor:
        shape = self.describe_inputs(config)
        frames = shape["frames_train" if train else "frames_eval"]
        return torch.randn(batch, shape["channels"], frames, shape["joints"], 1, device=device)

    def stream_data(self, dataset: Dataset, config: dict[str, Any], seed: int) -> StreamData:
        check_pose(dataset, self.spec.name)
        data_config = config["data"]
        feeders = {
            split: self.feeder(
                self.stream_arrays(dataset, data_config, split),
                dataset.labels(split),
                data_config,
                train=split == "train",
                seed=seed,
            )
            for split in SPLITS
        }
        return StreamData(train=feeders["train"], val=feeders["val"], test=feeders["test"])
