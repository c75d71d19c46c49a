"""The video-folder reader of `slrbench prepare --videos DIR`
(docs/formats/video.md#a-video-folder-for-slrbench-prepare): ids from file and folder names as the
datasets name them, colour over depth, one split `all` and no labels. The reader lists clips
without decoding them, so most fixtures are empty files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from slrbench.datasets.official import canonical_id
from slrbench.datasets.readers import FORMATS, read_copy
from slrbench.datasets.readers.videos import read_videos
from slrbench.datasets.sources import ReadOptions, SourceCopy
from slrbench.datasets.video_io import decode_clip
from slrbench.errors import SlrbenchError


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def read(root: Path, dataset: str = "autsl") -> SourceCopy:
    return read_videos(root, ReadOptions(dataset))


def found(copy: SourceCopy, root: Path) -> dict[str, str]:
    """{id: path relative to `root`} of the copy's one split."""
    assert list(copy.splits) == ["all"]
    split = copy.splits["all"]
    assert split.labels is None and split.videos is not None
    assert len(split.ids) == len(split.videos)
    return {i: v.relative_to(root).as_posix() for i, v in zip(split.ids, split.videos)}


def test_autsl_ids_and_colour_over_depth(tmp_path: Path) -> None:
    touch(tmp_path, "train/signer0_sample1_color.mp4", "train/signer0_sample1_depth.mp4",
          "train/signer0_sample10_color.mp4", "train/signer0_sample10_depth.mp4",
          "val/signer1_sample2_color.mp4", "val/signer1_sample2_depth.mp4")
    copy = read(tmp_path)
    assert copy.format == "video"
    # natural id order: sample1 < sample10 within signer0
    assert found(copy, tmp_path) == {"signer0_sample1": "train/signer0_sample1_color.mp4",
                           "signer0_sample10": "train/signer0_sample10_color.mp4",
                           "signer1_sample2": "val/signer1_sample2_color.mp4"}
    assert "left out 3 depth clips (the video methods read colour)" in copy.notes
    assert copy.files == copy.splits["all"].videos


def test_wlasl_ids_stay_zero_padded_strings(tmp_path: Path) -> None:
    touch(tmp_path, "videos/00335.mp4", "videos/01234.mp4", "videos/12345.mp4",
          "videos/README.txt")
    copy = read(tmp_path, "wlasl100")
    assert tuple(found(copy, tmp_path)) == ("00335", "01234", "12345")
    assert "ignored 1 files that are neither videos nor frame images" in copy.notes


def test_slr500_ids_join_the_split_csv_rows(tmp_path: Path) -> None:
    touch(tmp_path, "000/P01_01_00_1._color.mp4", "000/P01_01_00_1._depth.mp4",
          "499/P36_25_19_2._color.mp4")
    ids = tuple(found(read(tmp_path, "slr500"), tmp_path))
    # the split CSVs name clips `000/P01_01_00_1._color.mp4`; keypoint readers canonicalise
    # names the same way, so the ids join
    rows = ("000/P01_01_00_1._color.mp4", "499/P36_25_19_2._color.mp4")
    assert ids == tuple(canonical_id(r, None) for r in rows)
    assert all(i.startswith(("P01_01_00_1", "P36_25_19_2")) for i in ids)


def save_frames(folder: Path, colours: list[tuple[int, int, int]], pattern: str) -> None:
    folder.mkdir(parents=True)
    for i, colour in enumerate(colours):
        Image.new("RGB", (24, 16), colour).save(folder / pattern.format(i + 1))


def test_frame_folders_are_clips(tmp_path: Path) -> None:
    # NMFs-CSL (NLA-SLR): `<name>/image_%05d.jpg` numbered from 1; MS-ASL (NLA-SLR): `%04d.png`
    save_frames(tmp_path / "frames/word_007_p3", [(20 * (i + 1), 0, 0) for i in range(11)],
                "image_{:05d}.jpg")
    save_frames(tmp_path / "frames/hello_2", [(0, 90, 0)] * 3, "{:04d}.png")
    (tmp_path / "frames/word_007_p3/sub").mkdir()  # inside a frame folder: not searched
    touch(tmp_path, "frames/word_007_p3/sub/other.mp4")
    copy = read(tmp_path, "nmfs-csl")
    assert found(copy, tmp_path) == {"hello_2": "frames/hello_2",
                                     "word_007_p3": "frames/word_007_p3"}
    videos = copy.splits["all"].videos
    assert videos is not None
    # frames 0, 5, 10 of the 11 (image_00001, image_00006, image_00011): red 20, 120, 220
    np.testing.assert_allclose(decode_clip(videos[1], 8, 3)[:, 4, 4, 0], [20, 120, 220], atol=6)


def test_a_stray_image_beside_videos_is_not_a_frame_folder(tmp_path: Path) -> None:
    touch(tmp_path, "00335.mp4", "00336.mp4")
    Image.new("RGB", (8, 8)).save(tmp_path / "thumbnail.jpg")
    copy = read(tmp_path, "wlasl100")
    assert tuple(found(copy, tmp_path)) == ("00335", "00336")
    assert "ignored 1 files that are neither videos nor frame images" in copy.notes


def test_hidden_files_and_macos_forks_are_skipped(tmp_path: Path) -> None:
    touch(tmp_path, "signer0_sample1_color.mp4", "._signer0_sample1_color.mp4",
          "__MACOSX/._signer0_sample2_color.mp4", ".cache/signer0_sample3_color.mp4")
    assert tuple(found(read(tmp_path), tmp_path)) == ("signer0_sample1",)


def test_two_clips_for_one_id_are_refused(tmp_path: Path) -> None:
    touch(tmp_path, "a/signer0_sample1_color.mp4", "b/signer0_sample1.avi")
    with pytest.raises(SlrbenchError, match=r"two clips for sample 'signer0_sample1': "
                                            r"a/signer0_sample1_color\.mp4 and "
                                            r"b/signer0_sample1\.avi; expected one per sample"):
        read(tmp_path)


def test_depth_only_empty_and_missing_folders_are_refused(tmp_path: Path) -> None:
    touch(tmp_path, "depth/signer0_sample1_depth.mp4", "depth/signer0_sample2_depth.mp4")
    with pytest.raises(SlrbenchError, match=r"depth: only 2 depth clips; expected colour videos"):
        read(tmp_path / "depth")
    (tmp_path / "empty").mkdir()
    touch(tmp_path, "empty/labels.csv")
    with pytest.raises(SlrbenchError, match=r"empty: no videos \(.*\.mp4.*\) or frame folders; "
                                            "expected colour videos or frame folders of autsl"):
        read(tmp_path / "empty")
    with pytest.raises(SlrbenchError, match=r"absent: no such folder"):
        read(tmp_path / "absent")


def test_registered_as_the_video_format(tmp_path: Path) -> None:
    assert FORMATS["video"] == "videos:read_videos"
    touch(tmp_path, "signer0_sample1_color.mp4")
    copy = read_copy("video", tmp_path, "autsl")
    assert copy.format == "video" and copy.splits["all"].ids == ("signer0_sample1",)
