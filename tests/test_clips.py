"""Clip sampling: the index arrays of uniform, window and 3-crop sampling, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from slrbench.datasets.clips import three_crop_indices, uniform_indices, window_indices
from slrbench.errors import SlrbenchError


def test_uniform_takes_one_frame_per_equal_segment() -> None:
    assert uniform_indices(10, 5).tolist() == [0, 2, 4, 6, 8]  # segment middles of width 2
    assert uniform_indices(12, 4).tolist() == [1, 4, 7, 10]
    rng = np.random.default_rng(0)
    for _ in range(20):
        picked = uniform_indices(12, 4, rng)
        assert all(3 * k <= i < 3 * (k + 1) for k, i in enumerate(picked))  # inside segment k
    assert uniform_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short clips repeat in order


def test_windows_and_padding() -> None:
    assert window_indices(10, 4).tolist() == [3, 4, 5, 6]  # central
    assert window_indices(10, 4, where="start").tolist() == [0, 1, 2, 3]
    assert window_indices(10, 4, where="end").tolist() == [6, 7, 8, 9]
    assert window_indices(3, 7).tolist() == [0, 0, 0, 1, 2, 2, 2]  # symmetric padding
    assert window_indices(3, 5, where="start").tolist() == [0, 1, 2, 2, 2]  # pad at the end
    assert window_indices(3, 5, where="end").tolist() == [0, 0, 0, 1, 2]  # pad at the start
    rng = np.random.default_rng(1)
    starts = {int(window_indices(10, 4, rng, "random")[0]) for _ in range(200)}
    assert starts == set(range(7))  # every start from 0 to 6
    assert three_crop_indices(10, 4).tolist() == [[0, 1, 2, 3], [6, 7, 8, 9], [3, 4, 5, 6]]


def test_bad_requests_are_refused() -> None:
    with pytest.raises(SlrbenchError, match="at least one"):
        uniform_indices(0, 4)
    with pytest.raises(SlrbenchError, match="'random' with a generator"):
        window_indices(10, 4, where="random")  # no generator
    with pytest.raises(SlrbenchError, match="expected 'random'"):
        window_indices(10, 4, np.random.default_rng(0), "central")
