"""`slrbench extract-poses`: the checks before any video, the resume and keep-going logic, the
install hint without MediaPipe, and (where MediaPipe is installed: the `pose` extra, in an
environment of its own) real extractions read back through the `.pose` reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from slrbench.datasets import pose_extraction as px
from slrbench.datasets.sources import ReadOptions
from slrbench.errors import SlrbenchError

CONFIG = px.ExtractionConfig()


def test_without_mediapipe_the_command_says_how_to_install(
        cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # an import of it now fails
    code, _, err = cli("extract-poses", "--videos", str(tmp_path), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "mediapipe is not installed" in err and "pip install 'slrbench[pose]'" in err
    assert "numpy<2" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_model_complexity_is_checked_first(cli, tmp_path: Path) -> None:
    code, _, err = cli("extract-poses", "--videos", str(tmp_path), "--out", str(tmp_path),
                       "--model-complexity", "3")
    assert code == 2 and "--model-complexity: found 3; expected an integer from 0 to 2" in err


def test_find_videos(tmp_path: Path) -> None:
    with pytest.raises(SlrbenchError, match="not a folder"):
        px.find_videos(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(SlrbenchError, match=r"no \.mp4, \.avi, \.mov files found"):
        px.find_videos(tmp_path)
    for name in ("b.mp4", "a/c.AVI", "a/d.mov", ".hidden.mp4", "e.mkv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert px.find_videos(tmp_path) == [tmp_path / "a/c.AVI", tmp_path / "a/d.mov",
                                        tmp_path / "b.mp4"]


def test_output_paths_keep_sub_folders_and_refuse_clashes(tmp_path: Path) -> None:
    root, out = tmp_path / "v", tmp_path / "o"
    videos = [root / "a" / "x_color.mp4", root / "y.avi"]
    assert px.output_paths(videos, root, out) == [out / "a" / "x_color.pose", out / "y.pose"]
    with pytest.raises(SlrbenchError, match=r"y\.mp4 and .*y\.avi would both be written to"):
        px.output_paths([root / "y.avi", root / "y.mp4"], root, out)


def test_sidecar_is_written_and_guards_the_folder(tmp_path: Path) -> None:
    info = {"name": "mediapipe-holistic", "version": "0.10.21", "model_complexity": 1,
            "refine_face": False, "pose_format": "0.15.0", "mirrored": False}
    px.check_sidecar(tmp_path, info)
    assert json.loads((tmp_path / "extraction.json").read_text()) == info
    px.check_sidecar(tmp_path, dict(info))  # same settings: the folder may be resumed
    with pytest.raises(SlrbenchError, match=r"other settings \(refine_face False there, True "
                                            r"now\); expected the same settings"):
        px.check_sidecar(tmp_path, {**info, "refine_face": True})
    (tmp_path / "extraction.json").write_text("not json")
    with pytest.raises(SlrbenchError, match="is not a JSON object"):
        px.check_sidecar(tmp_path, info)


def test_detected_fractions_by_part() -> None:
    face = 468
    confidence = np.zeros((4, 1, 33 + face + 42 + 33))
    confidence[:, 0, 3] = 0.9  # the pose in every frame
    confidence[:2, 0, 40] = 1  # the face in frames 0 and 1
    confidence[3, 0, 33 + face + 5] = 1  # the left hand in frame 3
    assert px._detected(confidence, face) == {"pose": 1.0, "face": 0.5, "left_hand": 0.25,
                                             "right_hand": 0.0}


def _result(tmp_path: Path, frames: int, right_hand: float) -> px.VideoResult:
    return px.VideoResult(tmp_path, tmp_path, frames, 25.0, (64, 48),
                          {"pose": 1.0, "face": 1.0, "left_hand": 0.0, "right_hand": right_hand},
                          seconds=frames / 10)


def test_extract_all_resumes_and_keeps_going(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = [(tmp_path / f"{n}.mp4", tmp_path / "out" / f"{n}.pose") for n in "abc"]
    jobs[0][1].parent.mkdir()
    jobs[0][1].write_bytes(b"from an earlier run")

    def fake(video: Path, output: Path, config: px.ExtractionConfig) -> px.VideoResult:
        if video.stem == "b":
            raise SlrbenchError(f"{video}: no frame could be decoded")
        return _result(video, 10, 0.5)

    monkeypatch.setattr(px, "extract_video", fake)
    seen: list[Path] = []
    report = px.extract_all(jobs, CONFIG, keep_going=True, on_video=seen.append)
    assert report.kept == [jobs[0][1]] and [r.video for r in report.extracted] == [jobs[2][0]]
    assert report.failed == [(jobs[1][0], f"{jobs[1][0]}: no frame could be decoded")]
    assert seen == [v for v, _ in jobs]
    with pytest.raises(SlrbenchError, match=r"b\.mp4: no frame could be decoded"):
        px.extract_all(jobs, CONFIG)


def test_summary_weights_detection_by_frames(tmp_path: Path) -> None:
    report = px.ExtractionReport(extracted=[_result(tmp_path, 10, 1.0), _result(tmp_path, 30, 0.0)])
    totals = px.summary(report)
    assert (totals["videos"], totals["frames"], totals["seconds"]) == (2, 40, 4.0)
    assert totals["detected"]["right_hand"] == 0.25 and totals["frames_per_second"] == 10.0
    assert px.summary(px.ExtractionReport())["detected"] == {}


# ------------------------------------------------------------------ with MediaPipe installed
def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    cv2 = pytest.importorskip("cv2")
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_frames_without_a_person_give_confidence_zero(tmp_path: Path) -> None:
    pytest.importorskip("mediapipe")
    from slrbench.datasets.readers.pose_files import read_pose_files

    videos = tmp_path / "videos"
    videos.mkdir()
    gray = [np.full((96, 128, 3), 40 + 10 * i, dtype=np.uint8) for i in range(6)]
    _write_video(videos / "empty_room.mp4", gray)
    (videos / "broken.avi").write_bytes(b"\x00" * 64)
    config = px.ExtractionConfig(refine_face=True)
    with pytest.raises(SlrbenchError, match=r"broken\.avi: no frame could be decoded"):
        px.extract_folder(videos, tmp_path / "out", config)
    report = px.extract_folder(videos, tmp_path / "out", config, keep_going=True)
    assert [v.name for v, _ in report.failed] == ["broken.avi"]
    (result,) = report.extracted
    assert (result.frames, result.frame_size, result.fps) == (6, (128, 96), 25.0)
    assert result.detected == {"pose": 0.0, "face": 0.0, "left_hand": 0.0, "right_hand": 0.0}
    copy = read_pose_files(tmp_path / "out", ReadOptions("autsl"))
    pose = copy.splits["all"].pose
    assert pose is not None and copy.splits["all"].ids == ("empty_room",)
    assert (pose.layout, pose.frame_size) == ("mediapipe_holistic_586", (128, 96))
    assert not pose.load(0).any() and pose.load(0).shape == (6, 586, 3)
    assert pose.extractor["name"] == "mediapipe-holistic"
    assert pose.extractor["refine_face"] == "true" and pose.extractor["mirrored"] == "false"


@pytest.mark.shared
def test_real_signing_video(shared_dir: Path, tmp_path: Path, cli) -> None:
    """58 frames of a person signing: pose and face in every frame, the right hand in about a
    third of them, the left hand in none (docs/extras.md#pose-extraction)."""
    mediapipe = pytest.importorskip("mediapipe")
    from slrbench.datasets.readers.pose_files import read_pose_files

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "test_video.mp4").symlink_to(shared_dir / "data" / "poses" / "test_video.mp4")
    code, out, err = cli("extract-poses", "--videos", str(videos), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "1 videos extracted (58 frames" in out and "pose 100 %, face 100 %" in out
    copy = read_pose_files(tmp_path / "out", ReadOptions("autsl"))
    pose = copy.splits["all"].pose
    assert pose is not None
    assert (pose.layout, pose.frame_size) == ("mediapipe_holistic_576", (540, 720))
    assert pose.fps == pytest.approx(29.92, abs=0.01)
    assert pose.extractor["version"] == mediapipe.__version__
    assert pose.extractor["model_complexity"] == "1"
    points = pose.load(0)
    right = (points[:, 522:543, 2] > 0).any(axis=1).mean()
    assert points.shape == (58, 576, 3) and 0.2 < right < 0.5
    assert (points[:, :33, 2] > 0).any(axis=1).all() and (points[:, 33:501, 2] > 0).all()
    code, out, _ = cli("extract-poses", "--videos", str(videos), "--out", str(tmp_path / "out"))
    assert code == 0 and "nothing new extracted; 1 kept from an earlier run" in out
