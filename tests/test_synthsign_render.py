"""SynthSign: lazy RGB rendering, its cache, and the sanity figure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from slrbench.datasets.synthsign import SynthSign, load_synthsign
from slrbench.datasets.synthsign.figure import plot_samples

SMALL = {"n_classes": 4, "n_train_signers": 2, "n_val_signers": 1, "n_test_signers": 1,
         "repetitions": 1}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SynthSign:
    return load_synthsign("tiny", seed=7, cache_dir=tmp_path_factory.mktemp("synthsign_rgb"),
                          **SMALL)


def test_rgb_shape_dtype_and_cache(small: SynthSign) -> None:
    rgb = small.rgb("test", size=48, frames=6)
    assert rgb.dtype == np.uint8 and rgb.shape == (len(small.ids("test")), 6, 48, 48, 3)
    assert rgb.std() > 10  # not a blank image
    assert small.rgb("test", size=48, frames=6) is rgb  # memory cache
    files = list(small.cache_path.glob("rgb_test_48px_6f.npy"))
    assert len(files) == 1
    fresh = SynthSign(small.config, cache_dir=small.cache_path.parent)
    np.testing.assert_array_equal(fresh.rgb("test", size=48, frames=6), rgb)  # disk cache
    assert fresh.rgb("test", size=32, frames=6).shape[2:4] == (32, 32)  # keyed by size


def test_rgb_changes_where_the_hands_move(small: SynthSign) -> None:
    # Lighting drift and pixel noise off: only the body can change between frames.
    still = SynthSign(dataclasses.replace(small.config, lighting_variation=0.0,
                                          pixel_noise=0.0), cache_dir=small.cache_path.parent)
    size, frames = 64, 8
    checked = 0
    for i in range(len(still.ids("train"))):
        m = still.motion("train", i)
        idx = still.frame_indices(m.n_frames, frames)
        clip = still.render_sample("train", i, size=size, frames=frames, motion=m)
        cam = m.camera.scaled((size, size))
        wrists = cam.project(m.keypoints3d[idx][:, [9, 10]])  # (F, 2, 2)
        travel = np.linalg.norm(wrists - wrists[:1], axis=-1).max(0)
        h = int(np.argmax(travel))
        if travel[h] < 10:
            continue
        f = int(np.argmax(np.linalg.norm(wrists[:, h] - wrists[0, h], axis=-1)))
        diff = np.abs(clip[f].astype(int) - clip[0].astype(int)).sum(-1)
        x, y = np.clip(wrists[f, h].round().astype(int), 4, size - 5)
        near = diff[y - 3:y + 4, x - 3:x + 4].mean()
        corner = diff[:6, :6].mean()  # background
        assert corner == 0 and near > 30, (i, near, corner)
        checked += 1
    assert checked >= 2


def test_rgb_frames_agree_with_the_pose(small: SynthSign) -> None:
    """The rendered face sits where the pose puts the nose (one body for both): the pixels
    there have the signer's skin colour, up to lighting."""
    size = 64
    rgb = small.rgb("val", size=size, frames=4)
    pose = small.pose("val")
    signers = {s.id: s for s in small.signer_list}
    for i, sg in enumerate(small.signers("val")):
        skin = np.array(signers[sg].skin)
        idx = small.frame_indices(int(pose.lengths[i]), 4)
        for j, f in enumerate(idx):
            x, y = (pose.data[i, f, 0, :2] * size / small.config.frame_size[0]).round()
            x, y = int(x), int(y)
            patch = rgb[i, j, y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)
            cos = patch @ skin / (np.linalg.norm(patch) * np.linalg.norm(skin))
            assert cos > 0.97, (i, j, patch, skin)


def test_plot_samples_writes_a_png(small: SynthSign, tmp_path: Path) -> None:
    out = plot_samples(small, tmp_path / "fig" / "samples.png", n=2, split="train", size=64)
    assert out.exists() and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_title_states_the_rgb_size_methods_read() -> None:
    from slrbench.datasets.synthsign.figure import rgb_note

    assert rgb_note(64) == "RGB 64x64 px as methods read it"
    assert rgb_note(128) == "RGB rendered at 128x128 px for this figure (methods read 64x64)"
