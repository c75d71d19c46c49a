"""Decoding clips of real datasets (docs/formats/video.md#decoding-a-clip): frame folders through
Pillow, video files through PyAV, on fixtures made here (a red square moving right, so the frame
a decoded image came from can be told), and the real signing video of the reference data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from slrbench.datasets.frame_cache import grid_positions
from slrbench.datasets.video_io import ClipInfo, clip_info, decode_clip, natural_key
from slrbench.errors import SlrbenchError

WIDTH, HEIGHT, STEP, SIDE = 96, 64, 4, 12  # the square moves STEP px a frame


def square_frames(n: int) -> np.ndarray:
    """(n, HEIGHT, WIDTH, 3) uint8: grey background, a red square at x = STEP * i in frame i."""
    frames = np.full((n, HEIGHT, WIDTH, 3), 40, np.uint8)
    for i in range(n):
        frames[i, 26:26 + SIDE, STEP * i:STEP * i + SIDE] = (230, 20, 20)
    return frames


def resized(frames: np.ndarray, size: int) -> np.ndarray:
    """What each source frame looks like at size x size (Pillow, bilinear)."""
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size),
                                                          Image.Resampling.BILINEAR))
                     for f in frames])


def source_frames(decoded: np.ndarray, frames: np.ndarray) -> list[int]:
    """For each decoded image, the source frame it is closest to."""
    reference = resized(frames, decoded.shape[1]).astype(np.float32)
    distance = ((decoded[:, None].astype(np.float32) - reference[None]) ** 2).mean(axis=(2, 3, 4))
    return distance.argmin(axis=1).tolist()


def write_folder(folder: Path, frames: np.ndarray, pattern: str) -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / pattern.format(i + 1))
    return folder


def write_video(path: Path, frames: np.ndarray, codec: str = "libx264", rotation: int = 0,
                rate: int = 25, options: dict[str, str] | None = None) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


# --- frame folders ----------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["image_{:05d}.png", "{:04d}.png", "{}.png"])
def test_frame_folder_decodes_grid_frames_in_natural_order(tmp_path: Path, pattern: str) -> None:
    frames = square_frames(12)
    folder = write_folder(tmp_path / "clip", frames, pattern)  # `{}`: 1, 2, ..., 10, 11, 12
    decoded = decode_clip(folder, 32, 5)
    assert decoded.shape == (5, 32, 32, 3) and decoded.dtype == np.uint8
    # PNG is lossless and the resize is Pillow's bilinear one: exactly the frames
    # round(linspace(0, 11, 5)) = 0, 3, 6, 8, 11.
    np.testing.assert_array_equal(decoded, resized(frames[[0, 3, 6, 8, 11]], 32))


def test_jpeg_frames_keep_their_order_and_colour(tmp_path: Path) -> None:
    frames = square_frames(12)
    folder = write_folder(tmp_path / "clip", frames, "image_{:05d}.jpg")
    decoded = decode_clip(folder, 48, 4)
    assert source_frames(decoded, frames) == [0, 4, 7, 11]
    red = decoded[0, 22:27, 1:5].reshape(-1, 3).mean(axis=0)  # inside the square of frame 0
    assert red[0] > 180 and red[1] < 70 and red[2] < 70, red  # RGB, not BGR


def test_a_short_clip_repeats_frames(tmp_path: Path) -> None:
    frames = square_frames(3)
    folder = write_folder(tmp_path / "clip", frames, "{:04d}.png")
    # round(linspace(0, 2, 5)) = 0, 0.5 -> 0, 1, 1.5 -> 2, 2 (round half to even)
    np.testing.assert_array_equal(decode_clip(folder, 16, 5),
                                  resized(frames[[0, 0, 1, 2, 2]], 16))


def test_segments_are_0_based_with_exclusive_end(tmp_path: Path) -> None:
    frames = square_frames(12)
    folder = write_folder(tmp_path / "clip", frames, "{:04d}.png")
    # frames 4..9: 4 + round(linspace(0, 5, 4)) = 4 + (0, 2, 3, 5)
    np.testing.assert_array_equal(decode_clip(folder, 16, 4, (4, 10)),
                                  resized(frames[[4, 6, 7, 9]], 16))
    # an end past the clip stops at its last frame; None means the last frame
    np.testing.assert_array_equal(decode_clip(folder, 16, 2, (8, 100)),
                                  resized(frames[[8, 11]], 16))
    np.testing.assert_array_equal(decode_clip(folder, 16, 2, (8, None)),
                                  resized(frames[[8, 11]], 16))
    for bad, message in (((5, 5), "expected 0 <= start < end"),
                         ((-1, 3), "expected 0 <= start < end"),
                         ((12, None), "starts after the clip's 12 frames")):
        with pytest.raises(SlrbenchError, match=message):
            decode_clip(folder, 16, 2, bad)


def test_clip_info_of_a_frame_folder(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "clip", square_frames(7), "{:04d}.jpg")
    (folder / "notes.txt").write_text("not a frame")
    (folder / "._0001.jpg").write_bytes(b"macOS resource fork")
    assert clip_info(folder) == ClipInfo(7, None, WIDTH, HEIGHT)


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["image_10.jpg", "image_2.jpg", "image_1.jpg", "Image_3.jpg"]
    assert sorted(names, key=natural_key) == ["image_1.jpg", "image_2.jpg", "Image_3.jpg",
                                              "image_10.jpg"]


def test_frame_folders_need_no_pyav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    frames = square_frames(6)
    folder = write_folder(tmp_path / "clip", frames, "{:04d}.png")
    np.testing.assert_array_equal(decode_clip(folder, 16, 2), resized(frames[[0, 5]], 16))
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    with pytest.raises(SlrbenchError, match=r"clip\.mp4: .*pip install 'slrbench\[video\]'"):
        decode_clip(video, 16, 2)


def test_missing_empty_and_unreadable_clips(tmp_path: Path) -> None:
    with pytest.raises(SlrbenchError, match=r"absent\.mp4: no such file or folder"):
        decode_clip(tmp_path / "absent.mp4", 16, 4)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SlrbenchError, match=r"empty: no frame images \(\.bmp, \.jpeg"):
        decode_clip(empty, 16, 4)
    with pytest.raises(SlrbenchError, match=r"empty: no frame images"):
        clip_info(empty)
    folder = write_folder(tmp_path / "clip", square_frames(3), "{:04d}.png")
    (folder / "0002.png").write_bytes(b"not a png")
    with pytest.raises(SlrbenchError, match=r"0002\.png: not a readable image"):
        decode_clip(folder, 16, 3)
    with pytest.raises(SlrbenchError, match=r"0001\.png: a single image; expected a video file"):
        decode_clip(folder / "0001.png", 16, 3)
    with pytest.raises(SlrbenchError, match="expected positive integers"):
        decode_clip(folder, 0, 3)


# --- video files (PyAV) -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv"])  # Matroska keeps no frame count
def test_video_decodes_grid_frames(tmp_path: Path, name: str) -> None:
    frames = square_frames(20)
    video = write_video(tmp_path / name, frames)
    decoded = decode_clip(video, 48, 6)
    assert decoded.shape == (6, 48, 48, 3) and decoded.dtype == np.uint8
    assert source_frames(decoded, frames) == [0, 4, 8, 11, 15, 19]  # round(linspace(0, 19, 6))
    # close to the frames themselves, not only nearer to them than to the others
    assert np.abs(decoded.astype(int) - resized(frames[[0, 4, 8, 11, 15, 19]], 48)).mean() < 4
    red = decoded[0, 22:27, 1:5].reshape(-1, 3).mean(axis=0)
    assert red[0] > 180 and red[1] < 70 and red[2] < 70, red
    assert clip_info(video) == ClipInfo(20, 25.0, WIDTH, HEIGHT)


def test_video_segment(tmp_path: Path) -> None:
    frames = square_frames(20)
    video = write_video(tmp_path / "clip.mp4", frames)
    # frames 5..14: 5 + round(linspace(0, 9, 4)) = 5 + (0, 3, 6, 9)
    assert source_frames(decode_clip(video, 48, 4, (5, 15)), frames) == [5, 8, 11, 14]
    assert source_frames(decode_clip(video, 48, 3, (10, 99)), frames) == [10, 14, 19]
    with pytest.raises(SlrbenchError, match="starts after the clip's 20 frames"):
        decode_clip(video, 48, 3, (20, None))


def packet_starts(video: Path) -> list[int]:
    """Byte offset of each video packet in the file."""
    av = pytest.importorskip("av")
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return [int(p.pos) for p in container.demux(stream) if p.size]


def test_a_frame_count_the_header_gets_wrong(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    frames = square_frames(20)
    whole = write_video(tmp_path / "whole.avi", frames, codec="mpeg4")
    cut = tmp_path / "cut.avi"  # a download that stopped after 12 frames
    cut.write_bytes(whole.read_bytes()[:packet_starts(whole)[12]])
    with av.open(str(cut)) as container:
        assert container.streams.video[0].frames == 20  # AVI's header still says 20
    assert clip_info(cut).frames == 12
    # the grid goes over the 12 frames there: round(linspace(0, 11, 4)) = 0, 4, 7, 11
    assert source_frames(decode_clip(cut, 48, 4), frames) == [0, 4, 7, 11]


def test_decoding_errors_after_some_frames_end_the_clip(tmp_path: Path) -> None:
    pytest.importorskip("av")
    frames = square_frames(20)
    # The index first (`faststart`), then a cut inside packet 12: the header lists 20 frames and
    # the decoder fails on the cut packet.
    whole = write_video(tmp_path / "whole.mp4", frames, options={"movflags": "faststart"})
    starts = packet_starts(whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:starts[12] + 1])
    with pytest.warns(RuntimeWarning, match=r"cut\.mp4: decoding stopped after frame \d+"):
        info = clip_info(cut)
    assert 2 < info.frames < 13, info  # what came out before the error (B-frames lag behind)
    with pytest.warns(RuntimeWarning, match="decoding stopped"):
        decoded = decode_clip(cut, 48, 2)
    assert source_frames(decoded, frames) == [0, info.frames - 1]
    cut.write_bytes(whole.read_bytes()[:starts[1] + 1])  # broken before any frame came out
    with pytest.raises(SlrbenchError, match=r"cut\.mp4: not a decodable video \(.+\); expected"):
        decode_clip(cut, 48, 2)


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip(f"PyAV {av.__version__} cannot write a display rotation")
    frames = square_frames(8)
    plain = decode_clip(write_video(tmp_path / "plain.mp4", frames), 32, 3)
    # A display matrix that turns the picture 90 degrees counterclockwise (a phone held upright)
    turned = write_video(tmp_path / "turned.mp4", frames, rotation=90)
    rotated = decode_clip(turned, 32, 3)
    np.testing.assert_allclose(rotated, np.rot90(plain, 1, axes=(1, 2)), atol=2)
    # the square starts at the frame's left edge, which a counterclockwise turn puts at the bottom
    assert rotated[0, 24:, :].mean() > rotated[0, :8, :].mean()
    assert clip_info(turned) == ClipInfo(8, 25.0, HEIGHT, WIDTH)


def test_unreadable_videos(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(SlrbenchError, match=r"junk\.mp4: not a readable video \(.+\); expected"):
        decode_clip(junk, 16, 4)
    sound = tmp_path / "sound.mp4"  # audio only
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(SlrbenchError, match=r"sound\.mp4: no video stream \(found audio\)"):
        decode_clip(sound, 16, 4)
    whole = write_video(tmp_path / "whole.avi", square_frames(20), codec="mpeg4").read_bytes()
    header_only = tmp_path / "header_only.avi"
    header_only.write_bytes(whole[:whole.find(b"movi") + 4])
    with pytest.raises(SlrbenchError, match=r"header_only\.avi: no decodable video frame"):
        decode_clip(header_only, 16, 4)


# --- the real signing video -------------------------------------------------------------------


@pytest.mark.shared
def test_the_reference_signing_video(shared_dir: Path) -> None:
    pytest.importorskip("av")
    video = shared_dir / "data" / "poses" / "test_video.mp4"
    if not video.is_file():
        pytest.skip(f"{video} is not in the reference data")
    info = clip_info(video)
    assert (info.frames, info.width, info.height) == (58, 540, 720)
    assert info.fps == pytest.approx(29.9, abs=0.05)
    every = decode_clip(video, 32, 58)  # all 58 frames, in order
    assert every.shape == (58, 32, 32, 3)
    assert np.abs(np.diff(every.astype(int), axis=0)).mean(axis=(1, 2, 3)).min() > 0  # signing
    # the grid of 16 frames and a segment are exactly those frames of the whole clip
    np.testing.assert_array_equal(decode_clip(video, 32, 16), every[grid_positions(58, 16)])
    np.testing.assert_array_equal(decode_clip(video, 32, 10, (10, 20)), every[10:20])
