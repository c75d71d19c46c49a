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
