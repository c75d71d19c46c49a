"""Pooled keypoint statistics for the linear baseline (docs/methods/linear.md#input-pipeline).

One fixed-length vector per sample, from the pose arrays of a split:

1. **Keypoints.** COCO-WholeBody body points (nose, shoulders, elbows, wrists) and both
   21-point hands. A point is observed in frame t when t < length and its score is above
   ``min_score``; everything else is missing (never a number that enters a statistic).
2. **Body frame.** Per frame, the origin is the shoulder midpoint (frames without both
   shoulders use the sample's mean midpoint); one scale per sample, the median shoulder width.
   Body points are ``(p - origin) / scale``.
3. **Hands relative to their wrist.** Every hand point minus the hand's own root (COCO point
   91 / 112) of the same frame, divided by the same scale: the hand shape, independent of where
   the hand is (the body wrists carry the location).
4. **Dominant hand** (``dominant_hand="most_moving"``): when the left wrist travels further than
   the right one, the sample is mirrored (left and right swapped, x negated), so left-dominant
   signers look like right-dominant ones to a linear model.
5. **Pooling.** For each of the ``D`` coordinates: mean, standard deviation, minimum and maximum
   over the observed frames, mean absolute frame-to-frame change (over consecutive observed
   pairs) and the means of ``segments`` equal parts of the clip; then the fraction of frames in
   which the body, the left hand and the right hand are observed. A statistic without any
   observed frame is 0, so missing keypoints never produce NaN.

The result has ``feature_dim(config)`` columns: ``D * (5 + segments) + 3`` with
``D = 2 * (7 + 21 + 21) = 98``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slrbench.config import check_fields
from slrbench.datasets.base import PoseArrays
from slrbench.datasets.layouts import (
    COCO_WHOLEBODY_133,
    LEFT_HAND_BASE,
    RIGHT_HAND_BASE,
    convert,
    supported_conversions,
)
from slrbench.errors import SlrbenchError

FEATURE_VERSION = "1"
LAYOUT = "coco_wholebody_133"
# nose, left/right shoulder, elbow, wrist (COCO-WholeBody body order)
BODY_POINTS: tuple[int, ...] = (0, 5, 6, 7, 8, 9, 10)
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_WRIST, RIGHT_WRIST = 5, 6, 9, 10
HAND_POINTS = 21
LEFT_HAND = tuple(range(LEFT_HAND_BASE, LEFT_HAND_BASE + HAND_POINTS))
RIGHT_HAND = tuple(range(RIGHT_HAND_BASE, RIGHT_HAND_BASE + HAND_POINTS))
POINTS = len(BODY_POINTS) + 2 * HAND_POINTS
COORDS = 2  # x, y
PER_COORDINATE = ("mean", "std", "min", "max", "mean_abs_velocity")
VISIBILITY = ("body", "left_hand", "right_hand")
DOMINANT_HAND = ("most_moving", "as_recorded")
_EPS = 1e-6


@dataclass(frozen=True)
class FeatureConfig:
    """The feature definition; every field is stored in the record's config ("features")."""

    version: str = FEATURE_VERSION
    layout: str = LAYOUT
    segments: int = 3
    min_score: float = 0.0
    dominant_hand: str = "most_moving"

    def __post_init__(self) -> None:
        if self.version != FEATURE_VERSION:
            raise SlrbenchError(f"features.version: found {self.version!r}; expected "
                                f"{FEATURE_VERSION!r} (the only definition this code computes)")
        if self.layout != LAYOUT:
            raise SlrbenchError(f"features.layout: found {self.layout!r}; expected {LAYOUT!r}")
        if isinstance(self.segments, bool) or not isinstance(self.segments, int) or not (
                1 <= self.segments <= 16):
            raise SlrbenchError(f"features.segments: found {self.segments!r}; expected an "
                                "integer from 1 to 16")
        if not isinstance(self.min_score, (int, float)) or not 0.0 <= self.min_score < 1.0:
            raise SlrbenchError(f"features.min_score: found {self.min_score!r}; expected a "
                                "number in [0, 1)")
        if self.dominant_hand not in DOMINANT_HAND:
            raise SlrbenchError(f"features.dominant_hand: found {self.dominant_hand!r}; "
                                f"expected one of {', '.join(DOMINANT_HAND)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        check_fields(cls, data, "features config")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_dim(config: FeatureConfig) -> int:
    return POINTS * COORDS * (len(PER_COORDINATE) + config.segments) + len(VISIBILITY)


def feature_names(config: FeatureConfig) -> list[str]:
    """Column names, in column order (``<statistic>:<point>.<x|y>``)."""
    names = COCO_WHOLEBODY_133.names
    points = [names[i] for i in BODY_POINTS]
    points += [f"{names[i]}-wrist" for i in LEFT_HAND + RIGHT_HAND]
    coords = [f"{p}.{c}" for p in points for c in "xy"]
    stats = [*PER_COORDINATE, *(f"segment{k + 1}_mean" for k in range(config.segments))]
    return [f"{s}:{c}" for s in stats for c in coords] + [f"observed:{v}" for v in VISIBILITY]


def to_layout(pose: PoseArrays) -> np.ndarray:
    """The split's keypoints in COCO-WholeBody order, (N, T, 133, 3)."""
    if pose.layout != LAYOUT and (pose.layout, LAYOUT) not in supported_conversions():
        sources = sorted({LAYOUT} | {a for a, b in supported_conversions() if b == LAYOUT})
        raise SlrbenchError(f"pose layout: found '{pose.layout}'; the linear baseline expected "
                            f"one of {', '.join(sources)}")
    data = np.asarray(pose.data)
    if data.ndim != 4 or data.shape[-1] < 3:
        raise SlrbenchError(f"pose data: shape {data.shape}; expected (N, T, V, 3) with x, y "
                            "and score")
    return convert(data, pose.layout, LAYOUT)


def pooled_features(pose: PoseArrays, config: FeatureConfig) -> np.ndarray:
    """(N, feature_dim(config)) float64, finite, in the order of the pose arrays."""
    data = to_layout(pose).astype(np.float64, copy=False)
    n, t_max = data.shape[:2]
    lengths = np.asarray(pose.lengths)
    if lengths.shape != (n,):
        raise SlrbenchError(f"pose lengths: shape {lengths.shape}; expected ({n},)")
    in_clip = np.arange(t_max)[None, :] < np.clip(lengths, 0, t_max)[:, None]  # (N, T)
    xy = data[..., :2]
    score = data[..., 2]
    observed = (score > config.min_score) & np.isfinite(xy).all(-1) & in_clip[..., None]
    xy = np.where(observed[..., None], xy, 0.0)

    origin, scale = _body_frame(xy, observed)  # (N, T, 2), (N,)
    body = (xy[:, :, BODY_POINTS] - origin[:, :, None]) / scale[:, None, None, None]
    body_seen = observed[:, :, BODY_POINTS]
    hands, hands_seen = [], []
    for points in (LEFT_HAND, RIGHT_HAND):
        root = points[0]
        rel = (xy[:, :, points] - xy[:, :, root:root + 1]) / scale[:, None, None, None]
        seen = observed[:, :, points] & observed[:, :, root:root + 1]
        hands.append(rel)
        hands_seen.append(seen)
    if config.dominant_hand == "most_moving":
        flip = _left_dominant(body, body_seen)
        body, body_seen = _mirror_body(body, body_seen, flip)
        hands, hands_seen = _mirror_hands(hands, hands_seen, flip)

    coords = np.concatenate([body, *hands], axis=2)  # (N, T, POINTS, 2)
    seen = np.concatenate([body_seen, *hands_seen], axis=2)  # (N, T, POINTS)
    values = coords.reshape(n, t_max, POINTS * COORDS)
    mask = np.repeat(seen, COORDS, axis=2)
    values = np.where(mask, values, 0.0)

    columns = [*_pooled(values, mask), _velocity(values, mask)]
    position = (np.arange(t_max)[None, :] + 0.5) / np.maximum(lengths, 1)[:, None]  # (N, T)
    for k in range(config.segments):
        part = (position >= k / config.segments) & (position < (k + 1) / config.segments)
        columns.append(_masked_mean(values, mask & part[..., None]))
    visibility = [
        _fraction(body_seen.any(-1), in_clip),
        _fraction(hands_seen[0].any(-1), in_clip),
        _fraction(hands_seen[1].any(-1), in_clip),
    ]
    features = np.concatenate([*columns, np.stack(visibility, axis=1)], axis=1)
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)


# -------------------------------------------------------------------------------------- parts


def _body_frame(xy: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame origin (shoulder midpoint) and per-sample scale (median shoulder width)."""
    both = observed[:, :, LEFT_SHOULDER] & observed[:, :, RIGHT_SHOULDER]  # (N, T)
    mid = 0.5 * (xy[:, :, LEFT_SHOULDER] + xy[:, :, RIGHT_SHOULDER])
    width = np.linalg.norm(xy[:, :, LEFT_SHOULDER] - xy[:, :, RIGHT_SHOULDER], axis=-1)
    n = xy.shape[0]
    fallback = np.zeros((n, 2))
    scale = np.ones(n)
    any_point = np.asarray(observed.any(axis=(1, 2)))
    for i in range(n):
        if both[i].any():
            fallback[i] = mid[i][both[i]].mean(axis=0)
            scale[i] = float(np.median(width[i][both[i]]))
        elif any_point[i]:  # no frame shows both shoulders: centre and size of what is seen
            points = xy[i][observed[i]]
            fallback[i] = points.mean(axis=0)
            scale[i] = float(np.ptp(points, axis=0).max())
    scale = np.where(scale > _EPS, scale, 1.0)
    origin = np.where(both[..., None], mid, fallback[:, None, :])
    return origin, scale


def _left_dominant(body: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(N,) bool: the left wrist travels further than the right one over observed pairs."""
    travel = []
    for wrist in (BODY_POINTS.index(LEFT_WRIST), BODY_POINTS.index(RIGHT_WRIST)):
        step = np.linalg.norm(np.diff(body[:, :, wrist], axis=1), axis=-1)
        pair = seen[:, 1:, wrist] & seen[:, :-1, wrist]
        travel.append(np.where(pair, step, 0.0).sum(axis=1))
    return travel[0] > travel[1]


def _mirror_body(body: np.ndarray, seen: np.ndarray,
                 flip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mirror = [BODY_POINTS.index(COCO_WHOLEBODY_133.mirror[p]) for p in BODY_POINTS]
    mirrored = body[:, :, mirror] * np.array([-1.0, 1.0])
    return (np.where(flip[:, None, None, None], mirrored, body),
            np.where(flip[:, None, None], seen[:, :, mirror], seen))


def _mirror_hands(hands: list[np.ndarray], seen: list[np.ndarray],
                  flip: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    sign = np.array([-1.0, 1.0])
    out, out_seen = [], []
    for own, other in ((0, 1), (1, 0)):
        out.append(np.where(flip[:, None, None, None], hands[other] * sign, hands[own]))
        out_seen.append(np.where(flip[:, None, None], seen[other], seen[own]))
    return out, out_seen


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    count = mask.sum(axis=1)
    return np.where(mask, values, 0.0).sum(axis=1) / np.maximum(count, 1)


def _pooled(values: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """mean, std, min, max over observed frames; 0 where nothing was observed."""
    any_seen = mask.any(axis=1)
    mean = _masked_mean(values, mask)
    var = _masked_mean((values - mean[:, None]) ** 2, mask)
    low = np.where(mask, values, np.inf).min(axis=1)
    high = np.where(mask, values, -np.inf).max(axis=1)
    return [mean, np.sqrt(var), np.where(any_seen, low, 0.0), np.where(any_seen, high, 0.0)]


def _velocity(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    pair = mask[:, 1:] & mask[:, :-1]
    return _masked_mean(np.abs(np.diff(values, axis=1)), pair)


def _fraction(seen: np.ndarray, in_clip: np.ndarray) -> np.ndarray:
    return (seen & in_clip).sum(axis=1) / np.maximum(in_clip.sum(axis=1), 1)
