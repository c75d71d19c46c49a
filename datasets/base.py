"""What every dataset provides: a `DatasetSpec` (facts) and per-split arrays (data).

Arrays are always in the order of `spec.splits[split]` (registry order); every consumer joins by
sample id, never by position across files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

SPLITS = ("train", "val", "test")


def sha256_lines(items: tuple[str, ...] | list[str]) -> str:
    """SHA-256 of the newline-joined strings (class lists, ordered id lists)."""
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DatasetSpec:
    """Facts about one dataset (or one subset such as `wlasl100`)."""

    name: str
    version: str
    title: str
    classes: tuple[str, ...]
    splits: dict[str, tuple[str, ...]]
    modalities: tuple[str, ...]
    layout: str | None  # keypoint layout of `pose`, e.g. "coco_wholebody_133"
    frame_size: tuple[int, int] | None  # (width, height) in pixels of the pose coordinates
    fps: float | None = None
    signer_independent: bool | None = None
    selection_split: str = "val"
    report_split: str = "test"
    notes: tuple[str, ...] = ()
    citation: str = ""
    license: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    # Official split sizes where the local copy lacks samples (a prepared copy of a dataset
    # with dead videos): n_official reports them instead of the ids found.
    official_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def vocab_sha256(self) -> str:
        return sha256_lines(self.classes)

    def split_sha256(self, split: str) -> str:
        return sha256_lines(self.splits[split])

    def n_official(self, split: str) -> int:
        return self.official_sizes.get(split, len(self.splits[split]))


@dataclass(frozen=True)
class PoseArrays:
    """Keypoints of one split: `data` (N, T_max, V, 3) float32 = (x, y, score) in pixels of
    `frame_size`, zero-padded after `lengths[i]` frames."""

    data: np.ndarray
    lengths: np.ndarray
    layout: str
    frame_size: tuple[int, int]


@dataclass(frozen=True)
class SensorArrays:
    """IMU signals of one split: `data` (N, S_max, D) float32, zero-padded after `lengths[i]`."""

    data: np.ndarray
    lengths: np.ndarray
    rate_hz: float
    channels: tuple[str, ...]


@runtime_checkable
class Dataset(Protocol):
    """A dataset whose data are available locally."""

    spec: DatasetSpec

    def labels(self, split: str) -> np.ndarray:
        """int64 labels in `spec.splits[split]` order."""
        ...

    def signers(self, split: str) -> np.ndarray:
        """Signer ids (str) in `spec.splits[split]` order."""
        ...

    def pose(self, split: str) -> PoseArrays: ...
