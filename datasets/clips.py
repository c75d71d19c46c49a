"""Temporal clip sampling for video-style methods (docs/formats/video.md#clip-sampling): index
arrays into a clip's frames, so RGB, heatmaps and keypoints are cut alike.

* `uniform_indices(n, length, rng)`: pyskl's uniform sampling: `length` equal segments, one
  frame from each (a random one in training, each segment's middle at test); a clip shorter than
  `length` repeats frames in order.
* `window_indices(n, length, rng, where)`: NLA-SLR's consecutive window: a random start in
  training, else the central, start or end window; a shorter clip keeps all frames and is padded
  by repeating its first and last frame (randomly split in training, symmetric at test; at the
  end for the start window, at the start for the end window).
* `three_crop_indices(n, length)`: NLA-SLR's 3-crop test, the start, end and central windows.
"""

from __future__ import annotations

import numpy as np

from slrbench.errors import SlrbenchError

WINDOWS = ("random", "central", "start", "end")


def _check(n: int, length: int) -> None:
    if n < 1 or length < 1:
        raise SlrbenchError(f"clip sampling: found {n} frames and clip length {length}; "
                            "expected at least one of each")


def uniform_indices(n: int, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """`length` indices in [0, n), one per equal segment (random within it when `rng`)."""
    _check(n, length)
    if n < length:  # fewer frames than the clip: every frame, in order, repeated
        return np.floor(np.arange(length) * n / length).astype(np.int64)
    edges = np.linspace(0, n, length + 1)
    starts, widths = np.floor(edges[:-1]), np.maximum(np.floor(edges[1:]) - np.floor(edges[:-1]),
                                                       1)
    offsets = (np.floor(rng.random(length) * widths) if rng is not None
               else np.floor((widths - 1) / 2))
    return np.minimum(starts + offsets, n - 1).astype(np.int64)


def window_indices(n: int, length: int, rng: np.random.Generator | None = None,
                   where: str = "central") -> np.ndarray:
    """`length` consecutive indices (a window), or every frame padded at its ends."""
    _check(n, length)
    if where not in WINDOWS or (where == "random") != (rng is not None):
        raise SlrbenchError(f"clip window: found {where!r}; expected 'random' with a generator, "
                            f"or one of {', '.join(WINDOWS[1:])} without")
    span = abs(n - length)  # free start positions (long clip) or frames to pad (short clip)
    if where == "random":
        assert rng is not None
        shift = int(rng.integers(0, span + 1))
    else:
        shift = {"central": span // 2, "start": 0, "end": span}[where]
    if n >= length:
        return np.arange(shift, shift + length, dtype=np.int64)
    # `shift` frames of padding before the clip, the rest after it (edge frames repeated)
    return np.clip(np.arange(length) - shift, 0, n - 1).astype(np.int64)


def three_crop_indices(n: int, length: int) -> np.ndarray:
    """(3, length): the start, end and central windows (NLA-SLR's `3x_pad` test)."""
    return np.stack([window_indices(n, length, where=w) for w in ("start", "end", "central")])
