"""Streams: bones, motion, derivation order."""

from __future__ import annotations

import numpy as np
import pytest

from slrbench.datasets import streams as S
from slrbench.datasets.layouts import SAMSLR_27
from slrbench.datasets.skeleton import prepare_stream_arrays
from slrbench.errors import SlrbenchError


def test_bones_chain_by_hand() -> None:
    # 3-node chain 0 -> 1 -> 2, one frame, channels (x, y, score).
    x = np.array([[[1.0, 2.0, 0.9], [4.0, 6.0, 0.8], [5.0, 9.0, 0.5]]])  # (T=1, V=3, C=3)
    # Edge order must not matter (no in-place chaining).
    for edges in ([(0, 1), (1, 2)], [(1, 2), (0, 1)]):
        b = S.bones(x, edges)
        np.testing.assert_allclose(
            b[0], [[1.0, 2.0, 0.9], [3.0, 4.0, -0.1], [1.0, 3.0, -0.3]], atol=1e-12
        )
    np.testing.assert_array_equal(x[0, 0], [1.0, 2.0, 0.9])  # input untouched


def test_bones_samslr27_true_bones() -> None:
    rng = np.random.default_rng(1)
    j = rng.normal(size=(4, 27, 3))
    b = S.derive_stream(j, "b", "samslr_27")
    for p, c in SAMSLR_27.edges:
        np.testing.assert_allclose(b[:, c], j[:, c] - j[:, p])
    np.testing.assert_array_equal(b[:, 0], j[:, 0])  # the root keeps absolute values


def test_motion_last_frame_zero() -> None:
    x = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3) ** 2
    m = S.motion(x)
    np.testing.assert_array_equal(m[:-1], x[1:] - x[:-1])
    assert not m[-1].any()
    mb = S.motion(x[None].repeat(2, 0))  # leading batch axes are fine
    np.testing.assert_array_equal(mb[1], m)


def test_derive_all_streams() -> None:
    rng = np.random.default_rng(2)
    j = rng.normal(size=(2, 6, 27, 3)).astype(np.float32)
    out = {s: S.derive_stream(j, s, SAMSLR_27) for s in S.STREAMS}
    np.testing.assert_array_equal(out["j"], j)
    np.testing.assert_allclose(out["jm"], S.motion(j))
    np.testing.assert_allclose(out["bm"], S.motion(S.bones(j, SAMSLR_27.edges)))
    assert all(v.dtype == np.float32 for v in out.values())


def test_vector_streams_and_validation() -> None:
    assert [S.is_vector_stream(s) for s in S.STREAMS] == [False, True, True, True]
    assert set(S.STREAM_NAMES) == set(S.STREAMS)
    assert S.validate_streams(["bm", "j", "bm"]) == ("bm", "j")
    assert S.validate_streams("b") == ("b",)
    with pytest.raises(SlrbenchError, match=r"'jb'.*j, b, jm, bm"):
        S.validate_streams(["j", "jb"])
    with pytest.raises(SlrbenchError):
        S.validate_streams([])


def test_pad_then_derive_shows_loop_seam() -> None:
    # One sample, 3 valid frames of a node moving +1 px per frame, padded to 7 frames.
    t_max, v = 5, 27
    pose = np.zeros((1, t_max, v, 3), dtype=np.float32)
    pose[0, :3, :, 0] = np.arange(3)[:, None] + 100.0
    pose[0, :3, :, 2] = 1.0
    jm = prepare_stream_arrays(pose, np.array([3]), "samslr_27", "samslr_27", "jm", 7)
    assert jm.shape == (1, 3, 7, 27, 1) and jm.dtype == np.float32
    # Padded x: 100 101 102 100 101 102 100 -> motion 1 1 -2 1 1 -2 0.
    np.testing.assert_array_equal(jm[0, 0, :, 0, 0], [1, 1, -2, 1, 1, -2, 0])
    joints = prepare_stream_arrays(pose, np.array([3]), "samslr_27", "samslr_27", "j", 7)
    np.testing.assert_array_equal(joints[0, 0, :, 5, 0], [100, 101, 102, 100, 101, 102, 100])
