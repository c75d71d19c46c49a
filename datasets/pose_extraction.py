"""Keypoints from raw video with MediaPipe Holistic, written as pose-format `.pose` files
(`slrbench extract-poses`, docs/extras.md#extracting-poses).

MediaPipe 0.10.21 is the only whole-body extractor that runs offline from a Python package, and
it pins numpy below 2, so this runs in an environment of its own with the `pose` extra
(docs/extras.md#pose-extraction). Frames are decoded with OpenCV, which MediaPipe depends on. The
`.pose` files come from pose-format's own Holistic writer, so they have the component layout of
every other Holistic `.pose` file (`mediapipe_holistic_576`, or `_586` with the refined face),
and the `extraction.json` sidecar says who made them; the `.pose` reader hands it on to the
records (docs/formats/pose-format.md#in-slrbench).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from slrbench.datasets.layouts import (
    HAND21_POINT_NAMES,
    MEDIAPIPE_FACE_POINTS,
    MEDIAPIPE_FACE_POINTS_REFINED,
    MEDIAPIPE_POSE_NAMES,
)
from slrbench.datasets.readers.pose_files import SIDECAR
from slrbench.errors import SlrbenchError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov")
EXTRACTOR_NAME = "mediapipe-holistic"
INSTALL = ("pip install 'slrbench[pose]' in an environment of its own (MediaPipe 0.10.21 pins "
           "numpy<2)")
#: The only pose model MediaPipe 0.10.21 bundles; 0 and 2 are downloaded at run time.
OFFLINE_MODEL_COMPLEXITY = 1
# Component sizes of a Holistic .pose file (docs/formats/keypoint-layouts.md#mediapipe-holistic)
_POSE, _HAND = len(MEDIAPIPE_POSE_NAMES), len(HAND21_POINT_NAMES)


@dataclass(frozen=True)
class ExtractionConfig:
    """MediaPipe Holistic's settings that change the keypoints."""

    model_complexity: int = OFFLINE_MODEL_COMPLEXITY
    refine_face: bool = False

    def holistic_options(self) -> dict[str, Any]:
        return {"model_complexity": self.model_complexity,
                "refine_face_landmarks": self.refine_face}


@dataclass(frozen=True)
class VideoResult:
    """One extracted video: frames, fps, frame size and the fraction of frames in which each
    part was detected."""

    video: Path
    output: Path
    frames: int
    fps: float
    frame_size: tuple[int, int]
    detected: dict[str, float]
    seconds: float


@dataclass
class ExtractionReport:
    extracted: list[VideoResult] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # outputs already there from an earlier run
    failed: list[tuple[Path, str]] = field(default_factory=list)


def require_modules() -> None:
    """A one-line error saying how to install them unless mediapipe, pose-format and OpenCV
    import."""
    try:
        for name in ("mediapipe", "pose_format", "cv2"):
            importlib.import_module(name)
    except ImportError as error:
        raise SlrbenchError(f"extract-poses: {error.name or 'a module'} is not installed; "
                            f"expected the pose extra: {INSTALL}") from None


def extractor_info(config: ExtractionConfig) -> dict[str, Any]:
    """The sidecar's content: the extractor, its version and settings, and pose-format's version.
    Frames are never mirrored before extraction."""
    mediapipe = importlib.import_module("mediapipe")
    return {"name": EXTRACTOR_NAME, "version": str(mediapipe.__version__),
            "model_complexity": config.model_complexity, "refine_face": config.refine_face,
            "pose_format": importlib.metadata.version("pose-format"), "mirrored": False}


def find_videos(folder: Path) -> list[Path]:
    """Every .mp4/.avi/.mov file under `folder` (recursively, hidden files skipped), sorted;
    clips of another modality (AUTSL's `_depth` videos) are left out, as the video reader
    leaves them out: their poses would take the colour clip's id."""
    from slrbench.datasets.readers.videos import OTHER_MODALITY

    if not folder.is_dir():
        raise SlrbenchError(f"--videos {folder}: not a folder; expected a folder of videos")
    videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES
                    and p.is_file() and not p.name.startswith(".")
                    and not OTHER_MODALITY.search(p.stem))
    if not videos:
        raise SlrbenchError(f"--videos {folder}: no {', '.join(VIDEO_SUFFIXES)} files found "
                            "(searched recursively); expected one video per sample")
    return videos


def output_paths(videos: list[Path], root: Path, out: Path) -> list[Path]:
    """`<out>/<same sub-folder>/<video stem>.pose` per video; two videos may not share one."""
    outputs = [out / v.relative_to(root).with_suffix(".pose") for v in videos]
    seen: dict[Path, Path] = {}
    for video, target in zip(videos, outputs):
        if target in seen:
            raise SlrbenchError(f"--videos: {video} and {seen[target]} would both be written to "
                                f"{target}; expected one video per sample name")
        seen[target] = video
    return outputs


def check_sidecar(out: Path, info: dict[str, Any]) -> None:
    """Write the sidecar, or refuse an --out whose earlier files were made differently (their
    keypoints would not be comparable, docs/formats/keypoint-layouts.md#extractor-drift)."""
    from slrbench.store.atomic import atomic_write_json

    path = out / SIDECAR
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            found = None
        if not isinstance(found, dict):
            raise SlrbenchError(f"--out {out}: {SIDECAR} is not a JSON object; expected the one "
                                "extract-poses writes (remove it, or choose another --out)")
        differ = [f"{k} {found.get(k)!r} there, {v!r} now" for k, v in info.items()
                  if found.get(k) != v]
        if differ:
            raise SlrbenchError(f"--out {out}: its files were extracted with other settings "
                                f"({'; '.join(differ)}); expected the same settings: choose "
                                "another --out")
        return
    atomic_write_json(path, info)


def _frames(cv2: ModuleType, video: Path) -> tuple[Iterator[np.ndarray], float, tuple[int, int]]:
    """RGB frames (MediaPipe's input), fps and (width, height); an error if none decodes."""
    capture = cv2.VideoCapture(str(video))
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok or first is None:
        capture.release()
        raise SlrbenchError(f"{video}: no frame could be decoded; expected a video OpenCV reads")
    fps = float(capture.get(cv2.CAP_PROP_FPS))  # 0 where the container does not say

    def frames() -> Iterator[np.ndarray]:
        frame = first
        try:
            while frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = capture.read()
                frame = frame if ok else None
        finally:
            capture.release()

    return frames(), fps, (int(first.shape[1]), int(first.shape[0]))


def _detected(confidence: np.ndarray, face_points: int) -> dict[str, float]:
    """Fraction of frames with each component found (MediaPipe gives a part whole or not at
    all; missing points have confidence 0)."""
    found = confidence[:, 0] > 0  # (T, points), first person
    left = _POSE + face_points  # pose-format's component order: pose, face, left, right hand
    parts = {"pose": (0, _POSE), "face": (_POSE, left), "left_hand": (left, left + _HAND),
             "right_hand": (left + _HAND, left + 2 * _HAND)}
    return {name: float(found[:, a:b].any(axis=1).mean()) if len(found) else 0.0
            for name, (a, b) in parts.items()}


def check_model(config: ExtractionConfig) -> None:
    """Build the model once, so a complexity whose weights MediaPipe would have to download
    fails here in one line instead of inside the first video."""
    mediapipe = importlib.import_module("mediapipe")
    try:
        mediapipe.solutions.holistic.Holistic(**config.holistic_options()).close()
    except OSError as error:  # urllib's URLError offline
        raise SlrbenchError(
            f"--model-complexity {config.model_complexity}: MediaPipe could not load its pose "
            f"model ({error}); expected {OFFLINE_MODEL_COMPLEXITY}, the model bundled with "
            "mediapipe 0.10.21 (0 and 2 are downloaded at run time)") from None


def extract_video(video: Path, output: Path, config: ExtractionConfig) -> VideoResult:
    """Run Holistic on every frame of `video` and write `output` atomically. Frames without a
    person give points with confidence 0."""
    from slrbench.store.atomic import atomic_write_with

    # Imported by name: pose-format and OpenCV are optional and carry no type information.
    holistic = importlib.import_module("pose_format.utils.holistic")
    cv2 = importlib.import_module("cv2")
    start = time.perf_counter()
    frames, fps, (width, height) = _frames(cv2, video)
    # A fresh options dict per call: pose-format adds keys to the one it is given.
    pose = holistic.load_holistic(frames, fps=fps, width=width, height=height, progress=False,
                                  additional_holistic_config=config.holistic_options())
    atomic_write_with(output, pose.write)
    face_points = MEDIAPIPE_FACE_POINTS_REFINED if config.refine_face else MEDIAPIPE_FACE_POINTS
    confidence = np.asarray(pose.body.confidence)
    return VideoResult(video, output, int(confidence.shape[0]), fps, (width, height),
                       _detected(confidence, face_points), time.perf_counter() - start)


def plan(videos_dir: Path, out: Path, config: ExtractionConfig) -> list[tuple[Path, Path]]:
    """(video, output) pairs for every video under `videos_dir`, after every check that can fail
    before the first video: modules, videos found, no two outputs alike, the model loads, and
    `out` holds no extraction made with other settings (its sidecar is written)."""
    require_modules()
    videos = find_videos(videos_dir)
    outputs = output_paths(videos, videos_dir, out)
    check_model(config)
    check_sidecar(out, extractor_info(config))
    return list(zip(videos, outputs))


def extract_all(jobs: list[tuple[Path, Path]], config: ExtractionConfig, keep_going: bool = False,
                on_video: Callable[[Path], None] | None = None) -> ExtractionReport:
    """Extract each (video, output) of `plan`. Outputs already present from an earlier run with
    the same settings are kept, so an interrupted run resumes. A video that cannot be decoded
    stops the run, or with `keep_going` is listed in the report."""
    report = ExtractionReport()
    for video, output in jobs:
        if output.is_file():
            report.kept.append(output)
        else:
            try:
                report.extracted.append(extract_video(video, output, config))
            except SlrbenchError as error:
                if not keep_going:
                    raise
                report.failed.append((video, str(error)))
        if on_video is not None:
            on_video(video)
    return report


def extract_folder(videos_dir: Path, out: Path, config: ExtractionConfig,
                   keep_going: bool = False) -> ExtractionReport:
    """`plan` and `extract_all` in one call: every video under `videos_dir` into `out`, sub-folders
    kept."""
    return extract_all(plan(videos_dir, out, config), config, keep_going)


def summary(report: ExtractionReport) -> dict[str, Any]:
    """Totals of the videos extracted in this run: frames, seconds, detection fractions over
    all their frames."""
    done = report.extracted
    frames = sum(r.frames for r in done)
    seconds = sum(r.seconds for r in done)
    parts = done[0].detected.keys() if done else ()
    return {"videos": len(done), "kept": len(report.kept), "failed": len(report.failed),
            "frames": frames, "seconds": seconds,
            "frames_per_second": frames / seconds if seconds else 0.0,
            "detected": {p: sum(r.detected[p] * r.frames for r in done) / frames if frames
                         else 0.0 for p in parts}}
