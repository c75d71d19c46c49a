"""Decoding one clip of a real dataset into the frames the decoded-frame cache holds
(docs/formats/video.md#decoding-a-clip): `frames` frames on `grid_positions` over the clip, each
whole frame resized to size x size RGB, uint8.

A clip is a video file, decoded with PyAV (the `video` extra, imported only here and only for
video files), or a folder of frame images, read with Pillow (which comes with matplotlib, a core
dependency), so frame folders work without PyAV. Frame images are ordered naturally
(`image_2.jpg` before `image_10.jpg`).

Frame numbers are positions in decoding order, 0-based, at the video's own rate: a segment
(start, end) takes frames start <= i < end, and an end past the last frame is cut to it.
Container headers are only a hint: the grid is placed on the frames the decoder actually
delivers (a header may give no count, as WebM and Matroska do, or a wrong one), and a second
pass decodes again in the rare case the hint was wrong.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from slrbench.datasets.frame_cache import grid_positions
from slrbench.errors import SlrbenchError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                            ".flv", ".wmv", ".3gp"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
Segment = tuple[int, int | None]  # frames start <= i < end; end None = to the last frame


class ClipInfo(NamedTuple):
    frames: int  # decoded frames (image files in a frame folder)
    fps: float | None  # None for frame folders and videos whose container states no rate
    width: int  # as displayed (a 90-degree display rotation swaps width and height)
    height: int


def decode_clip(path: Path, size: int, frames: int, segment: Segment | None = None) -> np.ndarray:
    """(frames, size, size, 3) uint8 RGB: the frames at `grid_positions` over the clip (or over
    `segment` of it), each whole frame resized to size x size (bilinear)."""
    path = Path(path)
    if int(size) < 1 or int(frames) < 1:
        raise SlrbenchError(f"{path}: size={size}, frames={frames}; expected positive integers")
    if path.is_dir():
        return _decode_folder(path, int(size), int(frames), segment)
    return _decode_video(_video_file(path), int(size), int(frames), segment)


def clip_info(path: Path) -> ClipInfo:
    """Frame count, rate and size of a clip. For a video the count comes from decoding every
    frame (slow: a full decode), because container headers can be wrong or empty."""
    path = Path(path)
    if path.is_dir():
        images = frame_images(path)
        if not images:
            raise _no_images(path)
        from PIL import Image

        try:
            with Image.open(images[0]) as image:
                width, height = image.size
        except (OSError, ValueError) as exc:
            raise _bad_image(images[0], exc) from None
        return ClipInfo(len(images), None, int(width), int(height))
    path = _video_file(path)
    with _open_video(path) as (container, stream):
        rate = stream.average_rate or stream.guessed_rate
        count, rotation = 0, 0
        for frame in _frames(container, stream, path):
            if count == 0:
                rotation = _rotation(frame)
            count += 1
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
    if count == 0:
        raise _no_frames(path, None)
    if rotation % 2:
        width, height = height, width
    return ClipInfo(count, float(rate) if rate else None, width, height)


def frame_images(folder: Path) -> list[Path]:
    """The frame images of a folder in natural order; hidden files (macOS `._*`) left out."""
    images = [p for p in folder.iterdir()
              if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
              and p.is_file()]
    return sorted(images, key=lambda p: natural_key(p.name))


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders digit runs by value: `1.png` < `2.png` < `10.png`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def segment_positions(length: int, frames: int, segment: Segment | None, path: Path) -> np.ndarray:
    """The clip frames to keep: `grid_positions` over the segment of a clip of `length`
    frames (the whole clip without one)."""
    start, end = _bounds(segment, path)
    stop = length if end is None else min(end, length)
    if stop <= start:
        raise SlrbenchError(f"{path}: segment ({start}, {end}) starts after the clip's "
                            f"{length} frames; expected start < {length}")
    return start + grid_positions(stop - start, frames)


def _bounds(segment: Segment | None, path: Path) -> tuple[int, int | None]:
    if segment is None:
        return 0, None
    start, end = int(segment[0]), None if segment[1] is None else int(segment[1])
    if start < 0 or (end is not None and end <= start):
        raise SlrbenchError(f"{path}: segment ({start}, {end}); expected 0 <= start < end "
                            "(0-based frames, end exclusive, None for the last frame)")
    return start, end


# --- frame folders ---------------------------------------------------------------------------


def _decode_folder(folder: Path, size: int, frames: int, segment: Segment | None) -> np.ndarray:
    images = frame_images(folder)
    if not images:
        raise _no_images(folder)
    positions = segment_positions(len(images), frames, segment, folder)
    # A clip shorter than the grid repeats positions: read each image once.
    loaded = {int(p): _load_image(images[int(p)], size) for p in np.unique(positions)}
    return np.stack([loaded[int(p)] for p in positions])


def _load_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        raise _bad_image(path, exc) from None
    return np.asarray(resized, dtype=np.uint8)


# --- video files -----------------------------------------------------------------------------


def _decode_video(path: Path, size: int, frames: int, segment: Segment | None) -> np.ndarray:
    start, end = _bounds(segment, path)
    with _open_video(path) as (container, stream):
        # The header's frame count (0 when the container keeps none), else the packet count.
        hint = int(stream.frames) or sum(1 for packet in container.demux(stream) if packet.size)
    expected = hint if end is None else min(end, hint)
    wanted = (set(segment_positions(expected, frames, segment, path).tolist())
              if expected > start else set())
    kept, count = _scan(path, size, wanted, end)
    if count == 0:
        raise _no_frames(path, hint)
    positions = segment_positions(count, frames, segment, path)
    if not set(positions.tolist()) <= kept.keys():  # the hint was wrong: decode once more
        kept, _ = _scan(path, size, set(positions.tolist()), end)
    return np.stack([kept[int(p)] for p in positions])


def _scan(path: Path, size: int, wanted: set[int], end: int | None
          ) -> tuple[dict[int, np.ndarray], int]:
    """Decode from the start (up to frame `end`), converting only the `wanted` frames; returns
    them by index and the number of frames decoded."""
    kept: dict[int, np.ndarray] = {}
    count = 0
    with _open_video(path) as (container, stream):
        for frame in _frames(container, stream, path):
            if end is not None and count >= end:
                break
            if count in wanted:
                # swscale's bilinear filter widens with the scale factor: it averages when
                # shrinking instead of aliasing, like Pillow's for frame folders.
                rgb = frame.to_ndarray(width=size, height=size, format="rgb24",
                                       interpolation="BILINEAR")
                # Display rotation (phone videos) as ffmpeg applies it; the frame is square by
                # now, so rotating it equals resizing the rotated frame.
                kept[count] = np.ascontiguousarray(np.rot90(rgb, _rotation(frame)))
            count += 1
    return kept, count


@contextmanager
def _open_video(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """(container, first video stream) of `path`, decoded on one thread."""
    av = _pyav(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise SlrbenchError(f"{path}: not a readable video ({_reason(exc)}); expected a video "
                            "file PyAV can open") from None
    with container:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise SlrbenchError(f"{path}: no video stream (found {kinds}); expected a video")
        stream = container.streams.video[0]
        # One decoding thread: slrbench parallelises over clips and workers with explicit
        # thread counts; FFmpeg's automatic threads would oversubscribe the cores.
        stream.codec_context.thread_count = 1
        yield container, stream


def _frames(container: InputContainer, stream: VideoStream, path: Path) -> Iterator[VideoFrame]:
    """The decoded frames; a decoding error after the first frame ends the clip with a warning
    (truncated downloads are common), one before it is an error."""
    av = _pyav(path)
    count = 0
    try:
        for frame in container.decode(stream):
            count += 1
            yield frame
    except (av.FFmpegError, OSError) as exc:
        if count == 0:
            raise SlrbenchError(f"{path}: not a decodable video ({_reason(exc)}); expected a "
                                "video file PyAV can decode") from None
        warnings.warn(f"{path}: decoding stopped after frame {count} ({_reason(exc)}); the "
                      f"clip is taken as its first {count} frames", RuntimeWarning, stacklevel=2)


def _rotation(frame: VideoFrame) -> int:
    """Quarter turns counterclockwise that display the frame upright (PyAV versions without
    `rotation` read no display matrix and get none)."""
    return round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4


def _pyav(path: Path) -> ModuleType:
    try:
        import av
    except ImportError:
        raise SlrbenchError(f"{path}: decoding video files needs PyAV, which is not installed; "
                            "expected it: pip install 'slrbench[video]'") from None
    return av


def _video_file(path: Path) -> Path:
    if not path.exists():
        raise SlrbenchError(f"{path}: no such file or folder; expected a video file or a folder "
                            "of frame images")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SlrbenchError(f"{path}: a single image; expected a video file or a folder of "
                            "frame images")
    return path


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _no_frames(path: Path, hint: int | None) -> SlrbenchError:
    said = "" if not hint else f", although the container lists {hint}"
    return SlrbenchError(f"{path}: no decodable video frame{said}; expected at least one")


def _no_images(folder: Path) -> SlrbenchError:
    return SlrbenchError(f"{folder}: no frame images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                         "expected a video file or a folder of frame images")


def _bad_image(path: Path, exc: BaseException) -> SlrbenchError:
    return SlrbenchError(f"{path}: not a readable image ({_reason(exc)}); expected a frame "
                         "image (JPEG, PNG or BMP)")
