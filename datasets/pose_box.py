"""The pose-box crop of video pipelines (docs/formats/video.md#pose-box-crop): every frame of a
clip is cut to one box around the signer, found from the keypoints, so the person fills the
frame whatever the camera framing. As pyskl's `PoseCompact`: the union box of all detected
keypoints over the clip, widened by `padding` on each side, then made square about its centre;
the box may extend beyond the image (the frames are padded there).
"""

from __future__ import annotations

import numpy as np

from slrbench.errors import SlrbenchError


def pose_box(points: np.ndarray, scores: np.ndarray, padding: float = 0.25,
             square: bool = True, min_score: float = 0.0) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a clip: points (..., V, 2), scores (..., V); keypoints with a score
    not above `min_score` (undetected) are left out."""
    points = np.asarray(points, dtype=np.float64)
    seen = np.asarray(scores) > min_score
    if points.shape[:-1] != seen.shape or points.shape[-1] != 2:
        raise SlrbenchError(f"pose box: points {points.shape}, scores {seen.shape}; expected "
                            "points (..., joints, 2) and scores (..., joints)")
    if not seen.any():
        raise SlrbenchError("pose box: no detected keypoint in the clip; expected at least one "
                            "score above min_score")
    xy = points[seen]
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = (x1 - x0) * (1 + 2 * padding), (y1 - y0) * (1 + 2 * padding)
    if square:
        w = h = max(w, h)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def to_box(points: np.ndarray, box: tuple[float, float, float, float],
           size: tuple[int, int]) -> np.ndarray:
    """Keypoints in pixels of the crop `box` resized to `size` = (width, height)."""
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        raise SlrbenchError(f"pose box: found {box}; expected x1 > x0 and y1 > y0")
    scale = np.array([size[0] / (x1 - x0), size[1] / (y1 - y0)])
    return ((np.asarray(points, dtype=np.float64) - np.array([x0, y0])) * scale).astype(
        np.float32)
