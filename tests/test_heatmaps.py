"""Keypoint heatmaps against hand-computed Gaussians (joint and limb modes, score weighting,
the ±3σ window, people merged by maximum)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slrbench.datasets.heatmaps import (
    HeatmapConfig,
    joint_heatmaps,
    limb_heatmaps,
    scaled_sigma,
)
from slrbench.errors import SlrbenchError


def test_a_joint_is_a_score_weighted_gaussian_inside_three_sigma() -> None:
    points = np.array([[[[2.0, 3.0]]]])  # (frames 1, people 1, joints 1, xy)
    scores = np.array([[[0.5]]])
    maps = joint_heatmaps(points, scores, (7, 9), HeatmapConfig(), sigma=1.0)
    assert maps.shape == (1, 1, 7, 9) and maps.dtype == np.float32
    for y, x in [(3, 2), (3, 3), (4, 4), (0, 0), (3, 5)]:
        d2 = (x - 2) ** 2 + (y - 3) ** 2
        expected = 0.5 * math.exp(-d2 / 2) if d2 <= 9 else 0.0
        assert maps[0, 0, y, x] == pytest.approx(expected, rel=1e-6, abs=1e-9), (y, x)
    assert maps[0, 0, 3, 6] == 0.0  # 4 px away: outside the ±3σ window
    full = joint_heatmaps(points, scores, (7, 9), HeatmapConfig(truncate=None, use_score=False),
                          sigma=1.0)
    assert full[0, 0, 3, 6] == pytest.approx(math.exp(-16 / 2), rel=1e-6)  # NLA-SLR style
    assert full[0, 0, 3, 2] == pytest.approx(1.0)


def test_low_scores_draw_nothing_and_people_merge_by_maximum() -> None:
    points = np.array([[[[1.0, 1.0], [4.0, 4.0]], [[1.0, 1.0], [4.0, 4.0]]]])  # 2 people
    scores = np.array([[[0.3, 1e-4], [0.8, 0.0]]])
    maps = joint_heatmaps(points, scores, (6, 6), HeatmapConfig(), sigma=1.0)
    assert maps[0, 0, 1, 1] == pytest.approx(0.8)  # the larger of the two people
    assert not maps[0, 1].any()  # both below min_score 1e-3


def test_a_limb_is_the_gaussian_of_the_distance_to_its_segment() -> None:
    points = np.array([[[[1.0, 2.0], [5.0, 2.0]]]])  # a horizontal segment at y = 2
    scores = np.array([[[0.9, 0.6]]])
    maps = limb_heatmaps(points, scores, [(0, 1)], (5, 8), HeatmapConfig(), sigma=1.0)
    assert maps.shape == (1, 1, 5, 8)
    assert maps[0, 0, 2, 3] == pytest.approx(0.6)  # on the segment: min of the scores
    assert maps[0, 0, 4, 3] == pytest.approx(0.6 * math.exp(-4 / 2), rel=1e-6)  # 2 px off
    assert maps[0, 0, 2, 7] == pytest.approx(0.6 * math.exp(-4 / 2), rel=1e-6)  # past the end


def test_sigma_follows_the_map_size_with_a_floor() -> None:
    assert scaled_sigma(HeatmapConfig(), 56) == pytest.approx(0.7)
    assert scaled_sigma(HeatmapConfig(), 112) == pytest.approx(1.4)
    assert scaled_sigma(HeatmapConfig(min_sigma=1.0), 16) == 1.0
    with pytest.raises(SlrbenchError, match="sigma"):
        HeatmapConfig(sigma=0)
    with pytest.raises(SlrbenchError, match="expected points"):
        joint_heatmaps(np.zeros((1, 2, 3)), np.zeros((1, 2)), (4, 4), HeatmapConfig())


def test_flipping_maps_equals_drawing_the_flipped_keypoints() -> None:
    from slrbench.datasets.heatmaps import flip_heatmaps
    from slrbench.datasets.layouts import get_layout

    layout = get_layout("samslr_27")
    rng = np.random.default_rng(0)
    width, height = 12, 10
    points = rng.uniform([0, 0], [width - 1, height - 1], size=(2, 1, 27, 2))
    scores = rng.uniform(0.2, 1.0, size=(2, 1, 27))
    config = HeatmapConfig(truncate=None)
    flipped = points[..., list(layout.mirror), :].copy()  # joint i becomes its mirror
    flipped[..., 0] = width - 1 - flipped[..., 0]
    expected = joint_heatmaps(flipped, scores[..., list(layout.mirror)], (height, width),
                              config, sigma=1.0)
    maps = joint_heatmaps(points, scores, (height, width), config, sigma=1.0)
    np.testing.assert_allclose(flip_heatmaps(maps, layout.mirror), expected, atol=1e-6)
    with pytest.raises(SlrbenchError, match="one per joint"):
        flip_heatmaps(maps[..., :5, :, :], layout.mirror)


def test_the_pose_box_is_the_padded_square_union_of_the_keypoints() -> None:
    from slrbench.datasets.pose_box import pose_box, to_box

    points = np.array([[[10.0, 20.0], [30.0, 60.0], [99.0, 99.0]],
                       [[14.0, 22.0], [26.0, 50.0], [0.0, 0.0]]])  # (frames, joints, xy)
    scores = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])  # the third joint undetected
    # union box x 10..30, y 20..60; +25 % each side: w 20 -> 30, h 40 -> 60; square: 60 x 60
    assert pose_box(points, scores) == pytest.approx((-10.0, 10.0, 50.0, 70.0))
    assert pose_box(points, scores, square=False) == pytest.approx((5.0, 10.0, 35.0, 70.0))
    inside = to_box(points, (-10.0, 10.0, 50.0, 70.0), (120, 120))
    np.testing.assert_allclose(inside[0, 0], [40.0, 20.0])  # (10 + 10) * 2, (20 - 10) * 2
    with pytest.raises(SlrbenchError, match="no detected keypoint"):
        pose_box(points, np.zeros((2, 3)))


def test_the_separable_full_map_path_equals_the_direct_formula() -> None:
    from slrbench.datasets.heatmaps import _merge

    rng = np.random.default_rng(3)
    points = rng.uniform(-2, 18, (4, 2, 5, 2)).astype(np.float32)  # frames, people, joints
    scores = rng.uniform(0, 1, (4, 2, 5)).astype(np.float32)
    config = HeatmapConfig(sigma=1.75, use_score=False, min_score=0.2, truncate=None)
    fast = joint_heatmaps(points, scores, (12, 16), config)
    ys, xs = np.mgrid[0:12, 0:16].astype(np.float32)
    squared = ((xs - points[..., 0, None, None]) ** 2 + (ys - points[..., 1, None, None]) ** 2)
    direct = _merge(squared, scores, 1.75 * 16 / 56, config)
    np.testing.assert_allclose(fast, direct, rtol=1e-5, atol=1e-7)
    assert fast.shape == (4, 5, 12, 16)
    # Joints last: the same maps written as (frames, H, W, joints), for every mode.
    last = joint_heatmaps(points, scores, (12, 16), config, joints_last=True)
    assert last.shape == (4, 12, 16, 5) and last.flags.c_contiguous
    np.testing.assert_array_equal(last, np.moveaxis(fast, 1, -1))
    windowed = HeatmapConfig(sigma=1.75, min_score=0.2)
    np.testing.assert_array_equal(
        joint_heatmaps(points, scores, (12, 16), windowed, joints_last=True),
        np.moveaxis(joint_heatmaps(points, scores, (12, 16), windowed), 1, -1))
