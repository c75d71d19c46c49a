"""Reader of a folder of pose-format `.pose` files, one per sample
(docs/formats/pose-format.md#in-slrbench).

Ids are the file stems without modality suffixes (`signer1_sample5_color.pose` ->
`signer1_sample5`), returned as one split "all": prepare assigns each sample to its official split
by id. The layout (`mediapipe_holistic_576`, `mediapipe_holistic_586` or `openpose_137`) is told by
the header's components; every file must have the same layout and frame size, because a split's
keypoints share one (`PoseSource`). Only the first person of a file is read.

Parsing is left to the `pose-format` package (the `poseformat` extra), imported on first use.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from slrbench.datasets.sources import PoseSource, ReadOptions, SourceCopy, SourceSplit
from slrbench.errors import SlrbenchError

FORMAT = "pose"
SUFFIX = ".pose"
#: Written beside the `.pose` files by `slrbench extract-poses`: who produced them.
SIDECAR = "extraction.json"
INSTALL = "pip install 'slrbench[poseformat]'"
_SHOWN = 3  # examples quoted in an error

# Header components (name, points) -> layout. MediaPipe Holistic as pose-format writes it, with
# the plain (468) or refined (478) face mesh, and OpenPose's BODY_25 + face + hands
# (docs/formats/keypoint-layouts.md#mediapipe-holistic and #openpose-137).
_HOLISTIC = ("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS",
             "POSE_WORLD_LANDMARKS")
_LAYOUTS: dict[tuple[tuple[str, int], ...], str] = {
    tuple(zip(_HOLISTIC, (33, 468, 21, 21, 33))): "mediapipe_holistic_576",
    tuple(zip(_HOLISTIC, (33, 478, 21, 21, 33))): "mediapipe_holistic_586",
    (("pose_keypoints_2d", 25), ("face_keypoints_2d", 70), ("hand_left_keypoints_2d", 21),
     ("hand_right_keypoints_2d", 21)): "openpose_137",
}
_EXPECTED = ("MediaPipe Holistic (POSE_LANDMARKS 33, FACE_LANDMARKS 468 or 478, "
             "LEFT_HAND_LANDMARKS 21, RIGHT_HAND_LANDMARKS 21, POSE_WORLD_LANDMARKS 33) or "
             "OpenPose (pose_keypoints_2d 25, face_keypoints_2d 70, hand_left_keypoints_2d 21, "
             "hand_right_keypoints_2d 21)")


@dataclass(frozen=True)
class PoseFileInfo:
    """What a `.pose` header (and the start of its body) says about one file."""

    layout: str
    frame_size: tuple[int, int]
    fps: float
    frames: int
    people: int
    version: str


def pose_format_module(path: Path) -> ModuleType:
    """The `pose_format` package, or a one-line error naming the file that needs it."""
    try:
        return importlib.import_module("pose_format")
    except ImportError:
        raise SlrbenchError(f"{path}: reading .pose files needs the pose-format package, which is "
                            f"not installed; expected it installed: {INSTALL}") from None


def _version(value: float) -> str:
    return str(round(float(value), 4))  # stored as float32: 0.2 reads back as 0.200000003


def _info(path: Path, pose: Any) -> PoseFileInfo:
    header = pose.header
    found = tuple((str(c.name), len(c.points)) for c in header.components)
    layout = _LAYOUTS.get(found)
    if layout is None:
        shown = ", ".join(f"{name} {n}" for name, n in found)
        raise SlrbenchError(f"{path}: components {shown}; expected {_EXPECTED}")
    formats = {str(c.format) for c in header.components}
    if any(not (f.startswith("XY") and f.endswith("C")) for f in formats):
        raise SlrbenchError(f"{path}: point formats {sorted(formats)}; expected x and y first "
                            "and a confidence (XYC or XYZC)")
    # Body shape (frames, people, points, dims); the data may be empty (header-only read).
    frames, people = (int(n) for n in pose.body.data.shape[:2])
    size = (int(header.dimensions.width), int(header.dimensions.height))
    # fps is stored as float32 (29.916666 reads back as 29.91666603): keep its real digits.
    fps = float(f"{float(pose.body.fps):.6g}")
    return PoseFileInfo(layout, size, fps, frames, people, _version(header.version))


def _parse(path: Path, data: bytes | None) -> Any:
    """pose-format's `Pose` of a file: in full from `data`, else header and body size only."""
    module = pose_format_module(path)
    try:
        if data is not None:
            return module.Pose.read(data)
        body = importlib.import_module("pose_format.pose_body")
        with open(path, "rb") as handle:  # reads the header and a few bytes of the body
            return module.Pose.read(handle, pose_body=body.EmptyPoseBody)
    except NotImplementedError as error:
        if data is None:  # version 0.0 bodies have no header-only reader: read it all
            return _parse(path, path.read_bytes())
        raise _unreadable(path, error) from None
    except OSError:
        raise  # the file system's errors keep their own message (the CLI explains the fixable)
    except Exception as error:  # the parser raises struct, value, index ... errors on bad bytes
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: Exception) -> SlrbenchError:
    return SlrbenchError(f"{path}: not a readable pose-format file ({type(error).__name__}: "
                         f"{error}); expected a .pose file as pose-format writes it")


def probe(path: Path) -> PoseFileInfo:
    """Layout, frame size, fps, frames, people and format version of one `.pose` file, reading
    little more than its header."""
    return _info(path, _parse(path, None))


def load_pose_file(path: Path, expected: PoseFileInfo | None = None) -> np.ndarray:
    """(T, V, 3) float32 x, y, confidence of the first person, in pixels of the header's frame;
    z is dropped and masked points (not detected) get 0 everywhere. With `expected`, the file's
    layout and frame size must match it."""
    pose = _parse(path, path.read_bytes())
    info = _info(path, pose)
    if expected is not None and (info.layout, info.frame_size) != (expected.layout,
                                                                   expected.frame_size):
        raise SlrbenchError(f"{path}: layout {info.layout} at {_size(info.frame_size)}; expected "
                            f"{expected.layout} at {_size(expected.frame_size)} like the other "
                            "files of the folder")
    data, confidence = pose.body.data, np.asarray(pose.body.confidence)
    frames, points = data.shape[0], data.shape[2]
    out = np.zeros((frames, points, 3), dtype=np.float32)
    if data.shape[1] == 0:  # no person in any frame
        return out
    missing = np.ma.getmaskarray(data)[:, 0].any(axis=-1) | ~(confidence[:, 0] > 0)
    out[..., :2] = np.ma.getdata(data)[:, 0, :, :2]
    out[..., 2] = confidence[:, 0]
    out[missing] = 0.0
    return out


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def extractor(folder: Path, version: str) -> dict[str, str]:
    """Who produced the files: the `extraction.json` sidecar if present, else what the format
    tells (values as strings, the `PoseSource.extractor` contract)."""
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        return {"name": "unknown (pose-format file)", "format_version": version}
    try:
        found = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SlrbenchError(f"{sidecar}: not JSON ({error}); expected the object "
                            "`slrbench extract-poses` writes") from None
    if not isinstance(found, dict) or not isinstance(found.get("name"), str):
        raise SlrbenchError(f"{sidecar}: found {type(found).__name__} without a 'name' string; "
                            "expected an object with at least 'name'")
    # Booleans and numbers keep their JSON spelling ("true", "1").
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in found.items()}


def _canonical(stem: str) -> str:
    # The score importers' rule, so ids match whichever way a copy arrives.
    from slrbench.datasets.official import canonical_id

    return canonical_id(stem, None)


def read_pose_files(path: Path, options: ReadOptions) -> SourceCopy:
    """A folder (searched recursively) of `<sample id>.pose` files, as one split "all"."""
    del options  # .pose files carry no labels or class list: prepare takes both from the registry
    if not path.is_dir():
        raise SlrbenchError(f"{path}: not a folder; expected a folder of <sample id>{SUFFIX} files")
    # Hidden names are skipped: they include the temporary files of a write still under way.
    files = sorted(p for p in path.rglob(f"*{SUFFIX}")
                   if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SlrbenchError(f"{path}: no {SUFFIX} files found (searched recursively); expected "
                            f"one <sample id>{SUFFIX} file per sample")
    pose_format_module(files[0])  # the install hint before any work
    ids = [_canonical(p.stem) for p in files]
    first: dict[str, Path] = {}
    for sample_id, file in zip(ids, files):
        if sample_id in first:
            raise SlrbenchError(f"{file}: sample id '{sample_id}' again (also {first[sample_id]}); "
                                "expected one file per sample")
        first[sample_id] = file
    infos = [probe(p) for p in files]
    reference = _one_layout_and_size(path, files, infos)
    one_rate = len({i.fps for i in infos}) == 1
    paths = tuple(files)
    source = PoseSource(
        layout=reference.layout,
        frame_size=reference.frame_size,
        load=lambda i: load_pose_file(paths[i], reference),
        fps=reference.fps if one_rate else None,
        extractor=extractor(path, reference.version),
    )
    sidecar = (path / SIDECAR,) if (path / SIDECAR).is_file() else ()
    return SourceCopy(format=FORMAT, splits={"all": SourceSplit(ids=tuple(ids), pose=source)},
                      files=paths + sidecar, notes=_notes(files, infos))


def _one_layout_and_size(folder: Path, files: list[Path],
                         infos: list[PoseFileInfo]) -> PoseFileInfo:
    """The first file's info, once every file has its layout and frame size: a copy is stored
    with one of each."""
    reference = infos[0]
    for kind, key in (("layouts", lambda i: i.layout),
                      ("frame sizes", lambda i: _size(i.frame_size))):
        counts = Counter(key(i) for i in infos)
        if len(counts) > 1:
            odd = next(f for f, i in zip(files, infos) if key(i) != key(reference))
            found = ", ".join(f"{k} ({n} files)" for k, n in counts.most_common())
            raise SlrbenchError(f"{folder}: {kind} {found}, e.g. {odd}; expected one for all "
                                f"files (like {files[0]})")
    return reference


def _notes(files: list[Path], infos: list[PoseFileInfo]) -> tuple[str, ...]:
    """What the copy's report should mention: rates that differ, files with several people."""
    notes = []
    fps_counts = Counter(i.fps for i in infos)
    if len(fps_counts) > 1:
        notes.append("fps differs between files: " + ", ".join(
            f"{fps:g} ({n} files)" for fps, n in fps_counts.most_common()))
    crowded = [f.name for f, i in zip(files, infos) if i.people > 1]
    if crowded:
        notes.append(f"{len(crowded)} files hold more than one person (e.g. "
                     f"{', '.join(crowded[:_SHOWN])}); only the first person is read")
    return tuple(notes)
