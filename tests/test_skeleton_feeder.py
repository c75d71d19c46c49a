"""Skeleton arrays and feeder (docs/methods/samslr-pipeline.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slrbench.datasets.layouts import SAMSLR_27, convert
from slrbench.datasets.skeleton import (
    AugmentConfig,
    SkeletonFeeder,
    horizontal_flip,
    loop_pad_or_truncate,
    prepare_stream_arrays,
)
from slrbench.datasets.streams import derive_stream
from slrbench.errors import SlrbenchError

W = 640.0


def _seq(t: int, v: int = 2) -> np.ndarray:
    return np.arange(1, t + 1, dtype=np.float32)[:, None, None] * np.ones((t, v, 3), np.float32)


def test_loop_pad_or_truncate() -> None:
    s = np.zeros((6, 2, 3), np.float32)
    s[:4] = _seq(4)
    looped = loop_pad_or_truncate(s, 4, 10)[:, 0, 0]
    np.testing.assert_array_equal(looped, [1, 2, 3, 4] * 2 + [1, 2])
    np.testing.assert_array_equal(loop_pad_or_truncate(s, 4, 3)[:, 0, 0], [1, 2, 3])
    np.testing.assert_array_equal(loop_pad_or_truncate(s, 4, 4)[:, 0, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(loop_pad_or_truncate(s, 1, 3)[:, 0, 0], [1, 1, 1])
    z = loop_pad_or_truncate(s, 0, 5)
    assert z.shape == (5, 2, 3) and not z.any()
    with pytest.raises(SlrbenchError):
        loop_pad_or_truncate(s, 7, 5)


def test_prepare_stream_arrays_shapes_and_values() -> None:
    rng = np.random.default_rng(0)
    pose = rng.uniform(0, 500, size=(3, 12, 133, 3)).astype(np.float32)
    lengths = np.array([12, 5, 0])
    for stream in ("j", "b", "jm", "bm"):
        out = prepare_stream_arrays(pose, lengths, "coco_wholebody_133", "samslr_27", stream, 8)
        assert out.shape == (3, 3, 8, 27, 1) and out.dtype == np.float32
        # Sample 1: 5 valid frames looped, then the stream.
        joints = convert(pose[1], "coco_wholebody_133", "samslr_27")
        padded = loop_pad_or_truncate(joints, 5, 8)
        ref = derive_stream(padded, stream, SAMSLR_27)
        np.testing.assert_allclose(out[1, :, :, :, 0], ref.transpose(2, 0, 1), rtol=1e-6)
        assert not out[2].any()  # empty sequence -> zeros in every stream
    hand = prepare_stream_arrays(pose, lengths, "coco_wholebody_133", "hand21_left", "b", 8)
    assert hand.shape == (3, 3, 8, 21, 1)


def _data(n: int = 4, t: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.uniform(50, 600, size=(n, 3, t, 27, 1)).astype(np.float32)
    d[:, 2] = rng.uniform(0, 1, size=(n, t, 27, 1))
    return d


def test_flip_twice_is_identity_for_joints_and_negates_vectors() -> None:
    x = _data(1)[0]
    once = horizontal_flip(x, SAMSLR_27.mirror, vector=False, width=W)
    np.testing.assert_allclose(once[0, :, 1], W - x[0, :, 2])  # L shoulder <- R shoulder
    np.testing.assert_array_equal(once[2, :, 7], x[2, :, 17])  # scores permuted, not changed
    np.testing.assert_allclose(
        horizontal_flip(once, SAMSLR_27.mirror, False, W), x, rtol=0, atol=1e-4
    )
    vec = horizontal_flip(x, SAMSLR_27.mirror, vector=True, width=None)
    np.testing.assert_array_equal(vec[0], -x[0][:, list(SAMSLR_27.mirror)])
    np.testing.assert_array_equal(vec[1:], x[1:][:, :, list(SAMSLR_27.mirror)])


def test_eval_mode_centering_only_and_deterministic() -> None:
    data = _data()
    labels = np.arange(4)
    aug = AugmentConfig(window=8, frame_width=W)
    f = SkeletonFeeder(data, labels, "samslr_27", "j", train=False, aug=aug, seed=3)
    x, y, i = f[2]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert tuple(x.shape) == (3, 20, 27, 1) and y == 2 and i == 2  # no crop at eval
    ref = data[2].copy()
    ref[:2] -= ref[:2, :, 0:1, :].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(x.numpy(), ref, atol=1e-3)
    np.testing.assert_allclose(x[:2, :, 0, 0].mean(dim=1).numpy(), 0.0, atol=1e-3)
    np.testing.assert_array_equal(x[2].numpy(), data[2, 2])  # score untouched
    f.set_epoch(5)
    np.testing.assert_array_equal(f[2][0].numpy(), x.numpy())
    assert data[2, 0, 0, 0, 0] == _data()[2, 0, 0, 0, 0]  # the store is never modified


def test_vector_centering_touches_node0_only() -> None:
    data = _data()
    f = SkeletonFeeder(data, np.zeros(4), "samslr_27", "b", train=False)
    x = f[0][0].numpy()
    np.testing.assert_allclose(x[:2, :, 0, 0].mean(axis=1), 0.0, atol=1e-3)
    np.testing.assert_array_equal(x[:, :, 1:], data[0][:, :, 1:])


def test_train_pipeline_shapes_and_reproducibility() -> None:
    data = _data(t=20)
    aug = AugmentConfig(window=8, flip_prob=0.5, shift_px=10.0, frame_width=W)
    f = SkeletonFeeder(data, np.arange(4), "samslr_27", "j", train=True, aug=aug, seed=7)
    a = f[1][0]
    assert tuple(a.shape) == (3, 8, 27, 1)
    np.testing.assert_array_equal(f[1][0].numpy(), a.numpy())  # same (seed, epoch, index)
    g = SkeletonFeeder(data, np.arange(4), "samslr_27", "j", train=True, aug=aug, seed=7)
    np.testing.assert_array_equal(g[1][0].numpy(), a.numpy())
    draws = set()
    for epoch in range(6):
        f.set_epoch(epoch)
        draws.add(f[1][0].numpy().tobytes())
    assert len(draws) > 1  # epochs differ
    # Joint stream after centering + shift: nose time-mean lies within [-shift, shift).
    for epoch in range(6):
        f.set_epoch(epoch)
        nose_mean = f[1][0][:2, :, 0, 0].mean(dim=1).numpy()
        assert np.all(np.abs(nose_mean) <= 10.0 + 1e-3)


def test_train_crop_flip_shift_consistent_with_window_data() -> None:
    # Without flip and shift, a train sample is a centred contiguous window of the stored one.
    data = _data(t=20)
    aug = AugmentConfig(window=6, flip_prob=0.0, shift_px=0.0)
    f = SkeletonFeeder(data, np.arange(4), "samslr_27", "j", train=True, aug=aug, seed=1)
    x = f[3][0].numpy()
    stored = data[3]
    starts = [
        s
        for s in range(15)
        if np.allclose(x[2], stored[2, s : s + 6])  # scores are not centred
    ]
    assert len(starts) == 1
    win = stored[:, starts[0] : starts[0] + 6].copy()
    win[:2] -= win[:2, :, 0:1].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(x, win, atol=1e-3)


def test_always_flip_vector_stream() -> None:
    data = _data()
    aug = AugmentConfig(window=None, flip_prob=1.0, shift_px=0.0, center=False)
    f = SkeletonFeeder(data, np.arange(4), "samslr_27", "bm", train=True, aug=aug)
    x = f[0][0].numpy()
    perm = list(SAMSLR_27.mirror)
    np.testing.assert_array_equal(x[0], -data[0, 0][:, perm])


def test_feeder_errors() -> None:
    data = _data()
    with pytest.raises(SlrbenchError, match="frame_width"):
        SkeletonFeeder(data, np.arange(4), "samslr_27", "j", train=True, aug=AugmentConfig())
    with pytest.raises(SlrbenchError, match="window"):
        SkeletonFeeder(
            data, np.arange(4), "samslr_27", "j", True, AugmentConfig(window=50, frame_width=W)
        )
    with pytest.raises(SlrbenchError, match="nodes"):
        SkeletonFeeder(data, np.arange(4), "hand10_left", "j", train=False)
    with pytest.raises(SlrbenchError, match="stream"):
        SkeletonFeeder(data, np.arange(4), "samslr_27", "joint", train=False)
