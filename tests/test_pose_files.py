"""The `.pose` reader: layouts from the header, ids from file names, first person in pixels,
missing points as zeros, the extractor from the sidecar, one-line errors; and the reference
sample files with their known sizes, rates and handedness."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from slrbench.datasets import layouts as L
from slrbench.datasets.readers import FORMATS
from slrbench.datasets.readers import pose_files as P
from slrbench.datasets.sources import PoseSource, ReadOptions, SourceCopy
from slrbench.errors import SlrbenchError

OPTIONS = ReadOptions("autsl")
HOLISTIC = ("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS",
            "POSE_WORLD_LANDMARKS")


def write_pose(path: Path, data: np.ndarray, confidence: np.ndarray,
               counts: tuple[int, ...] = (33, 468, 21, 21, 33), names: tuple[str, ...] = HOLISTIC,
               size: tuple[int, int] = (320, 240), fps: float = 25.0, fmt: str = "XYZC") -> Path:
    """A .pose file written by pose-format itself: data (T, people, V, dims), confidence
    (T, people, V); a point with confidence 0 is masked, as pose-format stores missing points."""
    pf = pytest.importorskip("pose_format")
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    components = [PoseHeaderComponent(name=n, points=[str(i) for i in range(c)], limbs=[],
                                      colors=[(255, 0, 0)], point_format=fmt)
                  for n, c in zip(names, counts)]
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(*size, 0),
                        components=components)
    mask = np.repeat((confidence == 0)[..., None], data.shape[-1], axis=-1)
    body = NumPyPoseBody(fps=fps, data=np.ma.masked_array(data.astype(np.float32), mask),
                         confidence=confidence.astype(np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pf.Pose(header, body).write(f)
    return path


def holistic(frames: int = 4, people: int = 1, face: int = 468,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random Holistic data (x, y, z per point, confidence 1) with the left hand (points
    33 + face ... + 21) missing in frame 1."""
    points = 33 + face + 42 + 33
    rng = np.random.default_rng(seed)
    data = rng.uniform(1, 300, size=(frames, people, points, 3))
    confidence = np.ones((frames, people, points))
    confidence[1, :, 33 + face:33 + face + 21] = 0
    return data, confidence


def test_registered_as_the_pose_format() -> None:
    assert FORMATS["pose"] == "pose_files:read_pose_files"


def test_reads_a_folder_of_holistic_files(tmp_path: Path) -> None:
    data, conf = holistic()
    write_pose(tmp_path / "signer1_sample5_color.pose", data, conf)
    write_pose(tmp_path / "sub" / "signer2_sample1_color.pose", data[:3] + 1, conf[:3])
    (tmp_path / ".tmp-abc-1-x-signer3.pose").write_bytes(b"half written")  # skipped
    copy = P.read_pose_files(tmp_path, OPTIONS)
    assert copy.format == "pose" and list(copy.splits) == ["all"]
    split = copy.splits["all"]
    assert split.ids == ("signer1_sample5", "signer2_sample1")  # suffixes stripped, path order
    assert split.labels is None and split.videos is None
    pose = split.pose
    assert pose is not None
    assert (pose.layout, pose.frame_size, pose.fps) == ("mediapipe_holistic_576", (320, 240), 25)
    assert pose.extractor == {"name": "unknown (pose-format file)", "format_version": "0.2"}
    first = pose.load(0)
    assert first.shape == (4, 576, 3) and first.dtype == np.float32
    kept = np.ones((4, 576), dtype=bool)
    kept[1, 501:522] = False
    np.testing.assert_allclose(first[kept][:, :2], data[:, 0][kept][:, :2].astype(np.float32))
    assert (first[kept][:, 2] == 1).all()  # z dropped, confidence third
    assert not first[~kept].any()  # the missing hand: zeros, score 0
    assert pose.load(1).shape == (3, 576, 3)
    np.testing.assert_allclose(pose.load(1)[0, :, :2], data[0, 0, :, :2] + 1, rtol=1e-6)
    assert copy.files == tuple(sorted(tmp_path.rglob("[!.]*.pose")))


def test_layout_from_the_components(tmp_path: Path) -> None:
    data, conf = holistic(face=478)
    write_pose(tmp_path / "refined" / "a.pose", data, conf, counts=(33, 478, 21, 21, 33))
    pose = P.read_pose_files(tmp_path / "refined", OPTIONS).splits["all"].pose
    assert pose is not None and pose.layout == "mediapipe_holistic_586"
    assert pose.load(0).shape == (4, 586, 3)
    names = ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
             "hand_right_keypoints_2d")
    xy = np.random.default_rng(2).uniform(0, 99, size=(2, 1, 137, 2))
    write_pose(tmp_path / "openpose" / "b.pose", xy, np.full((2, 1, 137), 0.5),
               counts=(25, 70, 21, 21), names=names, size=(640, 480), fmt="XYC", fps=24)
    pose = P.read_pose_files(tmp_path / "openpose", OPTIONS).splits["all"].pose
    assert pose is not None
    assert (pose.layout, pose.frame_size, pose.fps) == ("openpose_137", (640, 480), 24)
    points = pose.load(0)
    np.testing.assert_allclose(points[..., :2], xy[:, 0].astype(np.float32))
    assert (points[..., 2] == 0.5).all()


def _pose(copy: SourceCopy) -> PoseSource:
    pose = copy.splits["all"].pose
    assert pose is not None
    return pose


def test_first_person_only_with_a_note(tmp_path: Path) -> None:
    data, conf = holistic(people=2)
    write_pose(tmp_path / "a.pose", data, conf)
    copy = P.read_pose_files(tmp_path, OPTIONS)
    points = _pose(copy).load(0)
    np.testing.assert_allclose(points[0, :, :2], data[0, 0, :, :2].astype(np.float32))
    assert any("more than one person" in n and "a.pose" in n for n in copy.notes)


def test_extractor_from_the_sidecar(tmp_path: Path) -> None:
    data, conf = holistic()
    write_pose(tmp_path / "a.pose", data, conf)
    sidecar = {"name": "mediapipe-holistic", "version": "0.10.21", "model_complexity": 1,
               "refine_face": False, "pose_format": "0.15.0"}
    (tmp_path / "extraction.json").write_text(json.dumps(sidecar))
    copy = P.read_pose_files(tmp_path, OPTIONS)
    assert _pose(copy).extractor == {
        "name": "mediapipe-holistic", "version": "0.10.21", "model_complexity": "1",
        "refine_face": "false", "pose_format": "0.15.0"}
    assert copy.files[-1] == tmp_path / "extraction.json"
    (tmp_path / "extraction.json").write_text("[1, 2]")
    with pytest.raises(SlrbenchError, match=r"extraction\.json: found list without a 'name'"):
        P.read_pose_files(tmp_path, OPTIONS)
    (tmp_path / "extraction.json").write_text("{oops")
    with pytest.raises(SlrbenchError, match=r"extraction\.json: not JSON"):
        P.read_pose_files(tmp_path, OPTIONS)


def test_fps_that_differ_are_noted_not_guessed(tmp_path: Path) -> None:
    data, conf = holistic()
    write_pose(tmp_path / "a.pose", data, conf, fps=25)
    write_pose(tmp_path / "b.pose", data, conf, fps=30)
    copy = P.read_pose_files(tmp_path, OPTIONS)
    assert _pose(copy).fps is None
    assert any("fps differs between files: 25 (1 files), 30 (1 files)" in n for n in copy.notes)


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SlrbenchError, match=r"no \.pose files found"):
        P.read_pose_files(tmp_path, OPTIONS)
    with pytest.raises(SlrbenchError, match="not a folder"):
        P.read_pose_files(tmp_path / "missing", OPTIONS)
    data, conf = holistic()
    # TFDS-style Holistic without the world landmarks (543 points): not a layout slrbench has.
    bad = write_pose(tmp_path / "tfds" / "a.pose", data[:, :, :543], conf[:, :, :543],
                     counts=(33, 468, 21, 21), names=HOLISTIC[:4])
    with pytest.raises(SlrbenchError, match=rf"{bad}: components POSE_LANDMARKS 33, "
                       r"FACE_LANDMARKS 468, .*; expected MediaPipe Holistic"):
        P.read_pose_files(tmp_path / "tfds", OPTIONS)
    write_pose(tmp_path / "dup" / "a_color.pose", data, conf)
    write_pose(tmp_path / "dup" / "a_depth.pose", data, conf)
    with pytest.raises(SlrbenchError, match=r"a_depth\.pose: sample id 'a' again \(also .*"
                                            r"a_color\.pose\)"):
        P.read_pose_files(tmp_path / "dup", OPTIONS)
    write_pose(tmp_path / "sizes" / "a.pose", data, conf, size=(320, 240))
    write_pose(tmp_path / "sizes" / "b.pose", data, conf, size=(640, 480))
    with pytest.raises(SlrbenchError, match=r"frame sizes 320x240 \(1 files\), 640x480 "
                                            r"\(1 files\), e\.g\. .*b\.pose; expected one"):
        P.read_pose_files(tmp_path / "sizes", OPTIONS)
    garbage = tmp_path / "garbage" / "x.pose"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\x00\x01 not a pose file")
    with pytest.raises(SlrbenchError, match=rf"{garbage}: not a readable pose-format file"):
        P.read_pose_files(tmp_path / "garbage", OPTIONS)


def test_a_file_changed_after_reading_is_refused_on_load(tmp_path: Path) -> None:
    data, conf = holistic()
    write_pose(tmp_path / "a.pose", data, conf)
    pose = P.read_pose_files(tmp_path, OPTIONS).splits["all"].pose
    assert pose is not None
    write_pose(tmp_path / "a.pose", data, conf, size=(100, 100))
    with pytest.raises(SlrbenchError, match=r"a\.pose: layout mediapipe_holistic_576 at 100x100; "
                                            r"expected mediapipe_holistic_576 at 320x240"):
        pose.load(0)


def test_missing_package_says_how_to_install(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.pose").write_bytes(b"")

    monkeypatch.setitem(sys.modules, "pose_format", None)  # an import of it now fails
    with pytest.raises(SlrbenchError) as error:
        P.read_pose_files(tmp_path, OPTIONS)
    message = str(error.value)
    assert str(tmp_path / "a.pose") in message and "pip install 'slrbench[poseformat]'" in message
    assert "\n" not in message


# ------------------------------------------------------------ the reference sample files
SAMPLES = {  # file: layout, frames, fps, frame size, format version
    "holistic_example_97f.pose": ("mediapipe_holistic_576", 97, 25.0, (320, 240), "0.2"),
    "holistic_7731febd_18f.pose": ("mediapipe_holistic_586", 18, 25.0, (640, 360), "0.2"),
    "openpose_93f.pose": ("openpose_137", 93, 24.0, (1000, 1000), "0.0"),
}


def _sample(shared_dir: Path, name: str, tmp_path: Path) -> tuple[str, np.ndarray, PoseSource]:
    pytest.importorskip("pose_format")
    folder = tmp_path / name
    folder.mkdir()
    (folder / name).symlink_to(shared_dir / "data" / "poses" / name)
    copy = P.read_pose_files(folder, OPTIONS)
    pose = copy.splits["all"].pose
    assert pose is not None
    return copy.splits["all"].ids[0], pose.load(0), pose


@pytest.mark.shared
@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_files(shared_dir: Path, tmp_path: Path, name: str) -> None:
    layout, frames, fps, size, version = SAMPLES[name]
    sample_id, points, pose = _sample(shared_dir, name, tmp_path)
    assert sample_id == name.removesuffix(".pose")
    assert (pose.layout, pose.fps, pose.frame_size) == (layout, fps, size)
    assert pose.extractor["format_version"] == version
    assert points.shape == (frames, L.get_layout(layout).num_nodes, 3)
    assert np.isfinite(points).all() and (points[..., 2] >= 0).all()
    assert not points[points[..., 2] == 0].any()  # undetected points are zeros throughout


@pytest.mark.shared
@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_hands_are_the_signers_sides(shared_dir: Path, tmp_path: Path, name: str) -> None:
    """After conversion, COCO's left hand sits at COCO's left wrist and the left shoulder has the
    larger x: anatomical sides of an unmirrored frame, as COCO-WholeBody labels them."""
    _, points, pose = _sample(shared_dir, name, tmp_path)
    coco = L.convert(points, pose.layout, "coco_wholebody_133")
    for hand, wrist, other in ((91, 9, 10), (112, 10, 9)):
        seen = (coco[:, hand, 2] > 0) & (coco[:, wrist, 2] > 0) & (coco[:, other, 2] > 0)
        assert seen.sum() >= 10
        near = np.linalg.norm(coco[seen, hand, :2] - coco[seen, wrist, :2], axis=1).mean()
        far = np.linalg.norm(coco[seen, hand, :2] - coco[seen, other, :2], axis=1).mean()
        assert near < 35 and far > 2 * near, (hand, near, far)
    assert np.median(coco[:, 5, 0] - coco[:, 6, 0]) > 0


@pytest.mark.shared
def test_sample_97f_missing_hands(shared_dir: Path, tmp_path: Path) -> None:
    """About 54 % of the 97 frames lack a hand (docs/formats/pose-format.md#values)."""
    _, points, _ = _sample(shared_dir, "holistic_example_97f.pose", tmp_path)
    left = (points[:, 501:522, 2] == 0).all(axis=1)
    right = (points[:, 522:543, 2] == 0).all(axis=1)
    assert (left.sum(), right.sum(), (left | right).sum()) == (52, 53, 55)
    image = points[:, :543]  # the world landmarks are not image pixels
    assert image[..., 0][image[..., 2] > 0.5].min() >= 0 and image[..., 0].max() <= 320
