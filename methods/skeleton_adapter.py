"""Shared data side of the skeleton methods (SL-GCN, DSTA-SLR, LGF-SLR): pose arrays ->
layout conversion -> stored stream arrays (N, C, T, V, 1) -> `SkeletonFeeder` per split.

The config's "data" section says everything the pipeline does, so it is hashed into the record:
``{"layout", "stream", "t_store", "augment": AugmentConfig fields}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slrbench.datasets.base import SPLITS, Dataset, DatasetSpec
from slrbench.datasets.skeleton import AugmentConfig, SkeletonFeeder, prepare_stream_arrays
from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodAdapter, StreamData

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


def augment_section(spec: DatasetSpec, window: int | None, **changes: Any) -> dict[str, Any]:
    """The SAM-SLR feeder augmentation with the flip width from the dataset (methods.md §1.5)."""
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


def check_pose(dataset: Dataset, method: str) -> None:
    if "pose" not in dataset.spec.modalities:
        raise SlrbenchError(
            f"--dataset {dataset.spec.name}: modalities {', '.join(dataset.spec.modalities)}; "
            f"method '{method}' expected pose keypoints"
        )


class SkeletonAdapter(MethodAdapter):
    """Adapters over pose keypoints. Subclasses may override `feeder` for their own sampling."""

    def stream_arrays(self, dataset: Dataset, data_config: dict[str, Any], split: str) -> np.ndarray:
        pose = dataset.pose(split)
        return prepare_stream_arrays(
            pose.data,
            pose.lengths,
            pose.layout,
            data_config["layout"],
            data_config["stream"],
            int(data_config["t_store"]),
        )

    def feeder(
        self, arrays: np.ndarray, labels: np.ndarray, data_config: dict[str, Any], train: bool, seed: int
    ) -> SkeletonFeeder:
        return SkeletonFeeder(
            arrays,
            labels,
            data_config["layout"],
            data_config["stream"],
            train=train,
            aug=AugmentConfig(**data_config["augment"]),
            seed=seed,
        )

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
        return StreamData(**feeders)
