"""What a reader of a user's dataset copy hands to `slrbench prepare` (docs/datasets/prepare.md):
per split the sample ids as the files name them, their labels, and, lazily, the keypoints of each
sample and the video each sample was cut from. Nothing here is validated or converted; prepare
checks it against the registry and writes the prepared copy.

A reader is a function `read(path: Path, options: ReadOptions) -> SourceCopy`, registered by
format name in `slrbench.datasets.readers`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PoseSource:
    """Keypoints of one split, one (T, V, 3) float32 array (x, y, score) per sample, read on
    demand: `load(i)` for the i-th id. `layout` names a `slrbench.datasets.layouts` layout;
    coordinates are pixels of `frame_size` (width, height)."""

    layout: str
    frame_size: tuple[int, int]
    load: Callable[[int], np.ndarray]
    fps: float | None = None
    # Who produced the keypoints, as far as the format tells: {"name": ..., "version": ...};
    # recorded in every record trained on them.
    extractor: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceSplit:
    """One split as found. `labels`: class indices in the reader's class order (`classes` of
    the copy), or None where only the registry knows them (raw videos, .pose files)."""

    ids: tuple[str, ...]
    labels: np.ndarray | None = None
    signers: tuple[str, ...] | None = None
    pose: PoseSource | None = None
    # A video file (.mp4, ...) or a folder of frame images per sample, in id order.
    videos: tuple[Path, ...] | None = None


@dataclass(frozen=True)
class SourceCopy:
    """What a reader found in a user's copy: its splits by the copy's own names mapped to
    slrbench's (`train`, `val`, `test`; a file holding val and test together is `val+test`), the
    class list the labels index when the copy has its own (NLA-SLR's sorted glosses), the format
    and the files read."""

    format: str
    splits: dict[str, SourceSplit]
    classes: tuple[str, ...] | None = None
    files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the path: the dataset's registry name."""

    dataset: str
