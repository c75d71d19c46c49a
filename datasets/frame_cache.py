"""The decoded-frame cache of video pipelines (docs/formats/video.md#decoded-frame-cache).

Decoding (or, for SynthSign, rendering) a clip costs far more than anything a video method does
with its frames afterwards, so each clip of a split is decoded once, on first use, into one
(N, F, H, W, 3) uint8 array: F frames on a fixed grid over the clip, from which every epoch
samples its training clips. The array is saved (atomically, under a lock) once every clip is
in, and read back by later runs and worker processes instead of decoding again. A saved file
that cannot be read is decoded again with a warning: it is derived data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from filelock import FileLock

from slrbench.store.atomic import atomic_write_with

ClipDecoder = Callable[[int], np.ndarray]  # clip index -> (F, H, W, 3) uint8


def grid_positions(length: int, frames: int) -> np.ndarray:
    """The clip frames a cache of `frames` frames holds: spread uniformly over a clip of
    `length` frames, first and last included."""
    return np.round(np.linspace(0, length - 1, frames)).astype(np.int64)


class FrameCache:
    """Frames of `n` clips of one split, each decoded by `decode` at most once."""

    def __init__(self, n: int, frame_shape: tuple[int, int, int], decode: ClipDecoder,
                 path: Path | None = None) -> None:
        self.shape = (int(n), *(int(v) for v in frame_shape), 3)
        self.decode = decode
        self.path = path
        self.decoded = 0  # clips decoded by this object (a test tells cache hits from misses)
        self._frames = np.empty(self.shape, np.uint8)
        self._filled = np.zeros(int(n), dtype=bool)
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            frames = np.load(self.path)
            if frames.shape != self.shape or frames.dtype != np.uint8:
                raise ValueError(f"shape {frames.shape} {frames.dtype}, expected {self.shape} "
                                 "uint8")
        except Exception as exc:
            warnings.warn(f"frame cache {self.path} is unreadable ({type(exc).__name__}: {exc}); "
                          "decoding the clips again", RuntimeWarning, stacklevel=3)
            return
        self._frames, self._filled[:] = frames, True

    @property
    def complete(self) -> bool:
        return bool(self._filled.all())

    def clip(self, index: int) -> np.ndarray:
        """(F, H, W, 3) uint8 frames of clip `index`, decoded now if this is the first use."""
        if not self._filled[index]:
            frames = np.asarray(self.decode(index))
            if frames.shape != self.shape[1:] or frames.dtype != np.uint8:
                raise ValueError(f"clip {index}: decoder gave {frames.shape} {frames.dtype}; "
                                 f"expected {self.shape[1:]} uint8")
            self._frames[index] = frames
            self._filled[index] = True
            self.decoded += 1
            if self.complete:
                self._save()
        return self._frames[index]

    def array(self) -> np.ndarray:
        """Every clip, (N, F, H, W, 3) uint8 (the missing ones decoded now)."""
        for index in np.flatnonzero(~self._filled):
            self.clip(int(index))
        return self._frames

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        frames = self._frames
        with FileLock(str(self.path.parent / ".lock")):
            atomic_write_with(self.path, lambda fh: np.save(fh, frames))
