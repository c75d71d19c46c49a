"""Keypoint heatmaps for video-style methods (docs/formats/pyskl.md#keypoint-heatmaps),
vectorised over frames and joints.

Joint mode draws, per joint, exp(-d² / 2σ²) around the joint, limb mode the same of the
distance to the segment between two joints; the amplitude is the joint's score (the smaller of
the two endpoint scores for a limb) when `use_score`, else 1. As pyskl's `GeneratePoseTarget`:
values beyond `truncate`·σ from the joint are 0, joints whose score is below `min_score` draw
nothing, and several people merge by maximum. NLA-SLR's variant is `use_score=False,
truncate=None, min_score=0` (a full-map Gaussian per joint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slrbench.errors import SlrbenchError

REFERENCE_MAP_SIZE = 56  # pyskl's RGBPose heatmaps: σ = 0.7 px on 56 x 56 maps


@dataclass(frozen=True)
class HeatmapConfig:
    sigma: float = 0.7  # at REFERENCE_MAP_SIZE; `scaled_sigma` follows the map size
    use_score: bool = True
    min_score: float = 1e-3
    truncate: float | None = 3.0  # None: the full-map Gaussian
    min_sigma: float = 0.0  # floor for small maps (tiny presets: 1 px keeps blobs visible)

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise SlrbenchError(f"heatmap sigma: found {self.sigma}; expected a positive number")
        if self.truncate is not None and not self.truncate > 0:
            raise SlrbenchError(f"heatmap truncate: found {self.truncate}; expected a positive "
                                "number of sigmas or None")


def scaled_sigma(config: HeatmapConfig, map_size: int) -> float:
    """σ in pixels of a `map_size` map: the reference σ scaled with the map side, never below
    `min_sigma`."""
    return max(config.min_sigma, config.sigma * map_size / REFERENCE_MAP_SIZE)


def joint_heatmaps(points: np.ndarray, scores: np.ndarray, size: tuple[int, int],
                   config: HeatmapConfig, sigma: float | None = None,
                   joints_last: bool = False) -> np.ndarray:
    """points (..., P, V, 2) x, y in map pixels, scores (..., P, V) -> (..., V, H, W) float32,
    the P people merged by maximum; `joints_last`: (..., H, W, V) instead."""
    points, scores = _check(points, scores)
    height, width = size
    s = scaled_sigma(config, max(size)) if sigma is None else sigma
    if config.truncate is None:  # a full-map Gaussian is separable: one outer product
        if joints_last:
            return _separable_joints_last(points, scores, size, s, config)
        return _separable(points, scores, size, s, config)
    if joints_last:
        return np.ascontiguousarray(np.moveaxis(joint_heatmaps(points, scores, size, config, s),
                                                -3, -1))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx = xs - points[..., 0, None, None]  # (..., P, V, H, W)
    dy = ys - points[..., 1, None, None]
    squared = dx * dx + dy * dy
    return _merge(squared, scores, s, config)


def _separable(points: np.ndarray, scores: np.ndarray, size: tuple[int, int], sigma: float,
               config: HeatmapConfig) -> np.ndarray:
    """exp(-(dx² + dy²) / 2σ²) as exp(-dx² / 2σ²) · exp(-dy² / 2σ²): the same maps as
    `_merge` without a window, from H + W exponentials per joint instead of H · W."""
    gx, gy, weight = _gaussians(points, scores, size, sigma, config)
    maps = (gy * weight[..., None])[..., :, None] * gx[..., None, :]  # (..., P, V, H, W)
    return _max_over_people(maps)


def _gaussians(points: np.ndarray, scores: np.ndarray, size: tuple[int, int], sigma: float,
               config: HeatmapConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 1-D factors exp(-dx² / 2σ²) (..., W), exp(-dy² / 2σ²) (..., H) and each joint's
    amplitude (...) of the separable full-map Gaussians."""
    height, width = size
    scale = np.float32(-0.5 / (sigma * sigma))
    gx = np.exp(scale * (np.arange(width, dtype=np.float32) - points[..., 0, None]) ** 2)
    gy = np.exp(scale * (np.arange(height, dtype=np.float32) - points[..., 1, None]) ** 2)
    drawn = scores >= config.min_score
    weight = np.where(drawn, scores if config.use_score else 1.0, 0.0).astype(np.float32)
    return gx, gy, weight


def _separable_joints_last(points: np.ndarray, scores: np.ndarray, size: tuple[int, int],
                           sigma: float, config: HeatmapConfig) -> np.ndarray:
    """`_separable` written straight into (..., H, W, V) memory."""
    gx, gy, weight = _gaussians(points, scores, size, sigma, config)
    rows = np.swapaxes(gy * weight[..., None], -1, -2)  # (..., P, H, V)
    columns = np.swapaxes(gx, -1, -2)  # (..., P, W, V)
    # A reduction over several people may leave numpy's output strided: make it dense.
    return np.ascontiguousarray(_max_over_people(rows[..., :, None, :] * columns[..., None, :, :]))


def limb_heatmaps(points: np.ndarray, scores: np.ndarray, limbs: Sequence[tuple[int, int]],
                  size: tuple[int, int], config: HeatmapConfig,
                  sigma: float | None = None) -> np.ndarray:
    """One map per limb (a, b): the Gaussian of each pixel's distance to the segment a-b,
    amplitude min(score_a, score_b) -> (..., L, H, W) float32."""
    points, scores = _check(points, scores)
    if not limbs:
        raise SlrbenchError("limbs: found none; expected (joint, joint) pairs")
    height, width = size
    s = scaled_sigma(config, max(size)) if sigma is None else sigma
    a = points[..., [i for i, _ in limbs], :]  # (..., P, L, 2)
    b = points[..., [j for _, j in limbs], :]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ab = b - a
    length2 = np.maximum((ab * ab).sum(-1), 1e-12)[..., None, None]
    t = ((xs - a[..., 0, None, None]) * ab[..., 0, None, None]
         + (ys - a[..., 1, None, None]) * ab[..., 1, None, None]) / length2
    t = np.clip(t, 0.0, 1.0)  # the nearest point of the segment, not of the whole line
    dx = xs - (a[..., 0, None, None] + t * ab[..., 0, None, None])
    dy = ys - (a[..., 1, None, None] + t * ab[..., 1, None, None])
    amplitude = np.minimum(scores[..., [i for i, _ in limbs]], scores[..., [j for _, j in limbs]])
    return _merge(dx * dx + dy * dy, amplitude, s, config)


def _merge(squared: np.ndarray, amplitude: np.ndarray, sigma: float,
           config: HeatmapConfig) -> np.ndarray:
    values = np.exp(-squared / (2.0 * sigma * sigma))
    if config.truncate is not None:  # pyskl draws inside a ±truncate·σ window only
        values = np.where(squared <= (config.truncate * sigma) ** 2, values, 0.0)
    drawn = amplitude >= config.min_score
    weight = np.where(drawn, amplitude if config.use_score else 1.0, 0.0)
    return _max_over_people(values * weight[..., None, None])


def _max_over_people(maps: np.ndarray, axis: int = -4) -> np.ndarray:
    """(..., P, V, H, W) -> (..., V, H, W) float32, people (`axis`) merged by maximum; one
    person (the usual case) is a view, not a reduction and a copy (most of a sample's drawing
    time)."""
    merged = np.squeeze(maps, axis) if maps.shape[axis] == 1 else maps.max(axis=axis)
    return merged.astype(np.float32, copy=False)


def _check(points: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if points.ndim < 3 or points.shape[-1] != 2 or points.shape[:-1] != scores.shape:
        raise SlrbenchError(f"heatmap inputs: points {points.shape}, scores {scores.shape}; "
                            "expected points (..., people, joints, 2) and scores (..., people, "
                            "joints)")
    return points, scores


def flip_heatmaps(maps: np.ndarray, mirror: Sequence[int]) -> np.ndarray:
    """A horizontal flip of joint maps (..., V, H, W): the image is mirrored and every channel
    takes its mirror joint's map (`KeypointLayout.mirror`), so a left wrist stays a left wrist.
    Equals drawing the maps of the flipped keypoints x -> W - 1 - x (pixel centres)."""
    maps = np.asarray(maps)
    if maps.ndim < 3 or maps.shape[-3] != len(mirror):
        raise SlrbenchError(f"heatmaps: {maps.shape[-3] if maps.ndim >= 3 else None} channels; "
                            f"expected {len(mirror)}, one per joint of the layout")
    return np.ascontiguousarray(maps[..., list(mirror), :, ::-1])
