"""The shared video pipeline: the decoded-frame cache, the pose-box crop through one affine
transform for RGB and heatmaps, mirrors, modalities that are never read when left out, and the
multi-clip test protocol (docs/formats/video.md)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from slrbench.datasets import video
from slrbench.datasets.base import PoseArrays
from slrbench.datasets.frame_cache import FrameCache
from slrbench.datasets.heatmaps import HeatmapConfig, flip_heatmaps
from slrbench.datasets.layouts import get_layout
from slrbench.datasets.video import (
    RGB_MEAN,
    RGB_STD,
    VideoAugment,
    VideoConfig,
    VideoFeeder,
    crop_clips,
    crop_transform,
)
from slrbench.errors import SlrbenchError

LAYOUT = "samslr_27"
V = get_layout(LAYOUT).num_nodes
SIZE = 32  # frame side in pixels (pose pixels and decoded pixels alike)


def _clips(n: int, frames: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, frames, SIZE, SIZE, 3), dtype=np.uint8)


class _Decoder:
    def __init__(self, clips: np.ndarray) -> None:
        self.clips, self.calls = clips, [0] * len(clips)

    def __call__(self, index: int) -> np.ndarray:
        self.calls[index] += 1
        return self.clips[index]


def _pose(n: int, frames: int = 6) -> PoseArrays:
    """Keypoints spread over the whole frame so the pose box is the frame itself."""
    data = np.zeros((n, frames, V, 3), np.float32)
    data[..., 2] = 1.0
    data[:, :, 0, :2] = (0.0, 0.0)
    data[:, :, 1, :2] = (SIZE, SIZE)
    data[:, :, 2:, :2] = SIZE / 2
    return PoseArrays(data, np.full(n, frames), LAYOUT, (SIZE, SIZE))


def _feeder(n: int = 3, train: bool = False, **changes: object) -> tuple[VideoFeeder, _Decoder]:
    decoder = _Decoder(_clips(n))
    config = VideoConfig(layout=LAYOUT, rgb_size=SIZE, rgb_frames=4, pose_frames=4,
                         heatmap_size=8, decode_size=SIZE, decode_frames=4, box_padding=0.0,
                         heatmap=HeatmapConfig(min_sigma=1.0), **changes)  # type: ignore[arg-type]
    cache = FrameCache(n, (4, SIZE, SIZE), decoder)
    return VideoFeeder(cache, _pose(n), np.arange(n), config, (SIZE, SIZE), train=train), decoder


def _pixels(rgb: torch.Tensor) -> np.ndarray:
    """(3, T, S, S) normalised -> (T, S, S, 3) in 0-255."""
    mean, std = np.array(RGB_MEAN), np.array(RGB_STD)
    return (rgb.permute(1, 2, 3, 0).numpy() * std + mean) * 255


# ------------------------------------------------------------------------------- frame cache


def test_frame_cache_decodes_each_clip_once_and_saves_when_complete(tmp_path: Path) -> None:
    clips = _clips(3)
    decoder = _Decoder(clips)
    path = tmp_path / "frames.npy"
    cache = FrameCache(3, (4, SIZE, SIZE), decoder, path)
    for _ in range(3):  # three "epochs"
        for i in (2, 0, 1):
            np.testing.assert_array_equal(cache.clip(i), clips[i])
    assert decoder.calls == [1, 1, 1] and cache.decoded == 3
    assert path.exists() and not list(tmp_path.glob("*.tmp*"))
    again = _Decoder(clips)
    reopened = FrameCache(3, (4, SIZE, SIZE), again, path)  # a later run reads the file
    np.testing.assert_array_equal(reopened.array(), clips)
    assert again.calls == [0, 0, 0] and reopened.decoded == 0


def test_frame_cache_is_saved_only_once_complete_and_redecodes_an_unreadable_file(
        tmp_path: Path) -> None:
    clips = _clips(2)
    path = tmp_path / "frames.npy"
    cache = FrameCache(2, (4, SIZE, SIZE), _Decoder(clips), path)
    cache.clip(0)
    assert not path.exists()  # half a split is never on disk
    path.write_bytes(b"not an array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = FrameCache(2, (4, SIZE, SIZE), _Decoder(clips), path)
    assert any("frame cache" in str(w.message) and "unreadable" in str(w.message)
               for w in caught)
    np.testing.assert_array_equal(fresh.array(), clips)
    assert fresh.decoded == 2
    np.testing.assert_array_equal(np.load(path), clips)  # replaced by a good file


def test_frame_cache_refuses_a_decoder_of_the_wrong_shape() -> None:
    cache = FrameCache(1, (4, SIZE, SIZE), lambda i: np.zeros((3, SIZE, SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match=r"clip 0: decoder gave \(3, 32, 32, 3\) uint8; "
                                         r"expected \(4, 32, 32, 3\) uint8"):
        cache.clip(0)


# ---------------------------------------------------------------------------------- geometry


def test_crop_transform_by_hand() -> None:
    matrix, centre = crop_transform((10, 20, 110, 220))
    np.testing.assert_allclose(matrix, [[50, 0], [0, 100]])
    np.testing.assert_allclose(centre, [60, 120])
    matrix, centre = crop_transform((0, 0, 100, 100), scale=2.0, angle=math.pi / 2,
                                    shift=(0.1, 0.0), mirror=True)
    # Mirror first (q_x -> -q_x), then scale to the half side 100 and rotate by 90°.
    np.testing.assert_allclose(matrix @ [1, 0], [0, -100], atol=1e-9)
    np.testing.assert_allclose(matrix @ [0, 1], [-100, 0], atol=1e-9)
    np.testing.assert_allclose(centre, [50 + 20, 50])


def test_the_box_of_the_whole_frame_reproduces_the_decoded_frames() -> None:
    feeder, decoder = _feeder()
    sample, label, index = feeder[1]
    assert (label, index) == (1, 1)
    assert sample["rgb"].shape == (1, 3, 4, SIZE, SIZE)  # evaluation: one clip
    np.testing.assert_allclose(_pixels(sample["rgb"][0]), decoder.clips[1], atol=1e-3)


def test_crop_clips_cuts_a_batch_in_one_call() -> None:
    clips = torch.from_numpy(_clips(2))  # (2, 4, 32, 32, 3)
    whole = crop_transform((0, 0, SIZE, SIZE))
    mirror = crop_transform((0, 0, SIZE, SIZE), mirror=True)
    matrices = torch.as_tensor(np.stack([whole[0], mirror[0]]))
    centres = torch.as_tensor(np.stack([whole[1], mirror[1]]))
    batch = crop_clips(clips, matrices, centres, (SIZE, SIZE), SIZE)
    assert batch.shape == (2, 3, 4, SIZE, SIZE)
    np.testing.assert_allclose(_pixels(batch[0]), clips[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(_pixels(batch[1]), clips[1].numpy()[:, :, ::-1], atol=1e-3)
    one = crop_clips(clips[1:], matrices[1:], centres[1:], (SIZE, SIZE), SIZE)
    torch.testing.assert_close(one[0], batch[1])  # a batch of one is the same cut


def test_heatmaps_are_drawn_in_the_crop_the_rgb_shows() -> None:
    feeder, _ = _feeder()
    maps = feeder[0][0]["heatmap"][0]  # (V, T, 8, 8)
    assert maps.shape == (V, 4, 8, 8)
    # Joint 0 at frame pixel (0, 0) is the crop's corner: map pixel (-0.5, -0.5); the nearest
    # pixel centre (0, 0) is 0.5 px away in x and y, with σ = 1 px: exp(-0.5 / 2).
    np.testing.assert_allclose(maps[0, :, 0, 0], math.exp(-0.25), rtol=1e-5)
    # Joints 2.. at the frame centre: map point (3.5, 3.5), four pixels equally bright.
    centre = maps[2, 0]
    np.testing.assert_allclose(centre[3:5, 3:5], math.exp(-0.25), rtol=1e-5)
    assert float(centre.max()) == pytest.approx(math.exp(-0.25), rel=1e-5)


def test_a_mirror_flips_the_rgb_and_swaps_left_and_right_channels() -> None:
    plain, _ = _feeder(train=True, augment=VideoAugment(scale=(1.0, 1.0), rotation_deg=0.0,
                                                        shift=0.0, flip_prob=0.0))
    mirrored, _ = _feeder(train=True, augment=VideoAugment(scale=(1.0, 1.0), rotation_deg=0.0,
                                                           shift=0.0, flip_prob=1.0))
    # Asymmetric keypoints, so the mirror moves blobs and swaps channels.
    for f in (plain, mirrored):
        f.keypoints[..., 5, :2] = (4.0, 10.0)
    a, b = plain[0][0], mirrored[0][0]  # same generator: same frames
    np.testing.assert_allclose(b["rgb"].numpy(), a["rgb"].flip(-1).numpy(), atol=1e-5)
    mirror = get_layout(LAYOUT).mirror
    expected = flip_heatmaps(a["heatmap"].numpy().transpose(1, 0, 2, 3), mirror)
    np.testing.assert_allclose(b["heatmap"].numpy().transpose(1, 0, 2, 3), expected, atol=1e-5)
    assert not np.allclose(a["heatmap"].numpy(), b["heatmap"].numpy())


def test_training_clips_are_augmented_and_reproducible_per_epoch() -> None:
    feeder, _ = _feeder(train=True)
    first = feeder[0][0]
    assert first["rgb"].shape == (3, 4, SIZE, SIZE) and first["heatmap"].shape == (V, 4, 8, 8)
    np.testing.assert_array_equal(feeder[0][0]["rgb"].numpy(), first["rgb"].numpy())
    feeder.set_epoch(1)
    assert not np.allclose(feeder[0][0]["rgb"].numpy(), first["rgb"].numpy())


# -------------------------------------------------------------------------------- modalities


def test_a_modality_left_out_is_never_decoded_or_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    feeder, decoder = _feeder()
    feeder.set_modalities(("heatmap",))
    assert set(feeder[0][0]) == {"heatmap"} and decoder.calls == [0, 0, 0]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("heatmaps drawn although not asked for")

    monkeypatch.setattr(video, "joint_heatmaps", refuse)
    feeder.set_modalities(("rgb",))
    assert set(feeder[2][0]) == {"rgb"} and decoder.calls == [0, 0, 1]
    with pytest.raises(SlrbenchError, match=r"modalities: found \['depth'\]; expected some of "
                                            "rgb, heatmap"):
        feeder.set_modalities(("depth",))


def test_several_test_clips_are_fixed_draws() -> None:
    feeder, _ = _feeder(n=2)
    feeder.test_clips = 3
    first = feeder[0][0]
    assert first["rgb"].shape == (3, 3, 4, SIZE, SIZE)
    np.testing.assert_array_equal(feeder[0][0]["heatmap"].numpy(), first["heatmap"].numpy())


def test_bad_video_settings_name_the_field() -> None:
    with pytest.raises(SlrbenchError, match=r"data\.rgb_frames: found 0; expected a positive"):
        VideoConfig(layout=LAYOUT, rgb_frames=0)
    with pytest.raises(SlrbenchError, match=r"data\.augment: unknown field 'zoom'"):
        VideoConfig.from_dict({"layout": LAYOUT, "augment": {"zoom": 2}})
    config = VideoConfig(layout=LAYOUT, zeroed_joints=(3, 4))
    assert VideoConfig.from_dict(config.to_dict()) == config  # exact round trip


# ------------------------------------------------------------------------ NLA-SLR options


def test_window_sampling_draws_heatmaps_at_the_rgb_frames_and_cuts_a_low_window() -> None:
    feeder, decoder = _feeder(box="frame", sampling="window", low_frames=2)
    # A keypoint whose x moves with the clip frame, so each heatmap frame tells its position.
    feeder.keypoints[..., 5, 0] = np.arange(6)[None, :] * 5.0
    sample = feeder[0][0]
    assert set(sample) == {"rgb", "heatmap", "rgb_low", "heatmap_low"}
    rgb, maps = sample["rgb"][0], sample["heatmap"][0]  # evaluation: one central window
    np.testing.assert_allclose(_pixels(rgb), decoder.clips[0], atol=1e-3)  # 4 of 4 frames
    positions = np.round(np.linspace(0, 5, 4)).astype(int)  # the cache grid of a 6-frame clip
    peak_x = maps[5].amax(dim=1).argmax(dim=1).numpy()  # column of the blob per frame
    np.testing.assert_array_equal(peak_x, np.round(positions * 5.0 * 8 / SIZE - 0.5 + 1e-9))
    torch.testing.assert_close(sample["rgb_low"][0], rgb[:, 1:3])  # central: start (4 - 2) // 2
    torch.testing.assert_close(sample["heatmap_low"][0], maps[:, 1:3])


def test_resized_crops_stay_inside_the_box_within_the_area_range() -> None:
    feeder, _ = _feeder(train=True, box="frame",
                        augment=VideoAugment(mode="resized_crop", area=(0.5, 0.5),
                                             aspect=(1.0, 1.0)))
    for epoch in range(5):
        feeder.set_epoch(epoch)
        matrix, centre, _ = feeder._transform(0, feeder._rng(0))
        half = np.abs(np.diag(matrix))
        np.testing.assert_allclose(half, SIZE / 2 * np.sqrt(0.5))  # area 0.5 of the frame
        assert np.all(centre - half >= -1e-9) and np.all(centre + half <= SIZE + 1e-9)


def test_nla_settings_are_checked() -> None:
    with pytest.raises(SlrbenchError, match=r"data\.pose_frames: found 8 with window sampling"):
        VideoConfig(layout=LAYOUT, rgb_frames=4, pose_frames=8, sampling="window")
    with pytest.raises(SlrbenchError, match=r"data\.low_frames: found 9; expected 1 to"):
        VideoConfig(layout=LAYOUT, rgb_frames=8, low_frames=9)
    with pytest.raises(SlrbenchError, match=r"data\.box: found 'person'"):
        VideoConfig(layout=LAYOUT, box="person")
    with pytest.raises(SlrbenchError, match=r"data\.augment\.mode: found 'zoom'"):
        VideoAugment(mode="zoom")
    config = VideoConfig(layout=LAYOUT, sampling="window", low_frames=4,
                         augment=VideoAugment(mode="resized_crop"))
    assert VideoConfig.from_dict(config.to_dict()) == config


def test_channels_last_gives_the_same_values_in_frames_last_memory() -> None:
    settings = {"box": "frame", "sampling": "window", "low_frames": 2}
    plain, _ = _feeder(n=2, train=True, **settings)
    fast, _ = _feeder(n=2, train=True, channels_last=True, **settings)
    for split_train in (True, False):
        plain.train = fast.train = split_train
        batch = [fast[i] for i in range(2)]
        for a, b in zip([plain[i] for i in range(2)], batch):
            assert a[0].keys() == b[0].keys()
            for name in a[0]:
                torch.testing.assert_close(a[0][name], b[0][name], rtol=0, atol=1e-6)
                frames_last = b[0][name].movedim(-4, -1)  # (..., T, H, W, C) in memory
                assert frames_last.is_contiguous(), name
        inputs, labels, indices = fast.collate(batch)
        assert labels.tolist() == indices.tolist() == [0, 1]
        for name, value in inputs.items():
            flat = value if value.dim() == 5 else value.flatten(0, 1)  # test clips: (N, clips)
            assert flat.is_contiguous(memory_format=torch.channels_last_3d), name
            torch.testing.assert_close(value, torch.stack([s[name] for s, _, _ in batch]))
    plain_inputs, _, _ = plain.collate([plain[0], plain[1]])
    assert plain_inputs["heatmap"].is_contiguous()  # the default layout stays as it was
