"""`slrbench prepare` (docs/datasets/prepare.md): the keypoint formats read from fixtures in their
exact published shapes (SAM-SLR arrays and label pickles, a pyskl annotation pickle, NLA-SLR split
and keypoint pickles), exact round trips into the prepared copy, every validation error, WLASL's
merged val + test file and subset selection by gloss order, a val split carved where a dataset
has none, and training end to end from a prepared copy."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_errors import one_line

from slrbench.datasets.official import official_split
from slrbench.datasets.prepare import prepare
from slrbench.datasets.prepared import PreparedDataset
from slrbench.datasets.readers import detect_format, read_copy
from slrbench.datasets.registry import load_dataset, local_status, prepared_dir
from slrbench.datasets.sources import PoseSource, SourceCopy, SourceSplit
from slrbench.errors import SlrbenchError

SPLITS = ("train", "val", "test")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Prepared copies go to this test's own cache folder."""
    monkeypatch.setenv("SLRBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _official(dataset: str, split: str, n: int, start: int = 0) -> tuple[list[str], np.ndarray]:
    table = official_split(dataset, split)
    assert table is not None
    return list(table.ids[start:start + n]), table.labels[start:start + n]


def _joints(rng: np.random.Generator, n: int, frames: int = 12) -> np.ndarray:
    data = rng.uniform(0, 256, (n, 3, frames, 27, 1)).astype(np.float32)
    data[:, 2] = rng.uniform(0.2, 1.0, (n, frames, 27, 1))
    return data


def write_samslr(folder: Path, splits: dict[str, tuple[list[str], Any]], seed: int = 0,
                 suffix: str = ".mp4") -> dict[str, np.ndarray]:
    """{split}_data_joint.npy (N, 3, T, 27, 1) and {split}_label.pkl (names, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, (ids, labels) in splits.items():
        arrays[split] = _joints(rng, len(ids))
        np.save(folder / f"{split}_data_joint.npy", arrays[split])
        with open(folder / f"{split}_label.pkl", "wb") as handle:
            pickle.dump(([f"{i}{suffix}" for i in ids], [int(v) for v in labels]), handle)
    return arrays


def _wlasl100(folder: Path, n: int = 6) -> dict[str, np.ndarray]:
    return write_samslr(folder, {s: _official("wlasl100", s, n) for s in SPLITS})


# ----------------------------------------------------------------------------- SAM-SLR
def test_samslr_arrays_round_trip_in_official_order(tmp_path: Path) -> None:
    source = tmp_path / "samslr"
    tables = {s: _official("wlasl100", s, 6) for s in SPLITS}
    # The copy lists its rows in reverse: the prepared copy is in official order.
    arrays = write_samslr(source, {s: (ids[::-1], labels[::-1]) for s, (ids, labels)
                                   in tables.items()})
    assert detect_format(source) == "samslr"
    result = prepare(read_copy("samslr", source, "wlasl100"), "wlasl100", prepared_dir("wlasl100"))
    assert result.report.found == {"train": 6, "val": 6, "test": 6}
    assert result.report.official == {"train": 1442, "val": 338, "test": 258}
    dataset = load_dataset("wlasl100")
    assert isinstance(dataset, PreparedDataset)
    for split, (ids, labels) in tables.items():
        assert dataset.spec.splits[split] == tuple(ids)
        np.testing.assert_array_equal(dataset.labels(split), labels)
        pose = dataset.pose(split)
        expected = arrays[split][::-1, :, :, :, 0].transpose(0, 2, 3, 1)  # (N, T, 27, 3)
        np.testing.assert_array_equal(pose.data, expected)  # exact, float32
        assert pose.lengths.tolist() == [12] * 6 and pose.layout == "samslr_27"
    assert dataset.spec.n_official("test") == 258 and dataset.spec.frame_size == (256, 256)
    assert dataset.spec.extra["frame_flipped"] is True  # SAM-SLR flipped its frames
    assert local_status("wlasl100") == "prepared: train 6/1442, val 6/338, test 6/258"


def test_a_merged_val_and_test_file_is_split_by_the_official_ids(tmp_path: Path) -> None:
    val_ids, val_labels = _official("wlasl100", "val", 4)
    test_ids, test_labels = _official("wlasl100", "test", 3)
    # DSTA-SLR's evaluation file: val and test rows in one "test" file.
    write_samslr(tmp_path / "dsta", {
        "train": _official("wlasl100", "train", 4),
        "test": (val_ids + test_ids, np.concatenate([val_labels, test_labels]))})
    result = prepare(read_copy("samslr", tmp_path / "dsta", "wlasl100"), "wlasl100",
                     prepared_dir("wlasl100"))
    assert result.report.found == {"train": 4, "val": 4, "test": 3}
    assert any("held 3 test, 4 val samples" in n and "merged val + test" in n
               for n in result.report.notes)
    dataset = PreparedDataset(prepared_dir("wlasl100"))
    assert dataset.spec.splits["val"] == tuple(val_ids)


def test_wlasl_subsets_keep_the_first_glosses(tmp_path: Path) -> None:
    # A WLASL2000 copy prepared as WLASL100: the samples of the first 100 glosses, same labels.
    table = official_split("wlasl2000", "train")
    assert table is not None
    low = [i for i, label in enumerate(table.labels) if label < 100][:5]
    high = [i for i, label in enumerate(table.labels) if label >= 100][:7]
    rows = low + high
    write_samslr(tmp_path / "w2000", {"train": ([table.ids[i] for i in rows],
                                               table.labels[rows])})
    result = prepare(read_copy("samslr", tmp_path / "w2000", "wlasl100"), "wlasl100",
                     prepared_dir("wlasl100"))
    assert result.report.found["train"] == 5 and result.report.skipped_outside == 7
    dataset = PreparedDataset(prepared_dir("wlasl100"))
    np.testing.assert_array_equal(dataset.labels("train"), table.labels[low])
    assert dataset.spec.classes == tuple(table.classes[:100])


@pytest.mark.parametrize(("change", "message"), [
    ("labels", r"sample \w+: label \d+ \('.+'\); expected the official \d+ \('.+'\): is the "
               "copy in another class order"),
    ("nan", r"1 samples with NaN or infinite keypoints: \w+ \(\w+\); expected usable keypoints "
            r"\(--drop-invalid"),
    ("empty", r"1 samples with no detected keypoint in any frame: \w+ \(\w+\)"),
    ("duplicate", r"sample \w+: in the copy's splits 'train' and 'val'; expected each sample "
                  "in one split"),
    ("foreign", r"none of its 2 samples belongs to wlasl100's splits"),
    ("no_labels", r"train_data_joint\.npy: no label file beside it; expected train_label\.pkl"),
    ("shape", r"train_data_joint\.npy: shape \(6, 3, 12, 25, 1\); expected \(N, 3, T, 27, M\)"),
    ("rows", r"train_label\.pkl: 5 names for 6 rows of the joint array"),
])
def test_every_validation_error_names_what_was_found(tmp_path: Path, change: str,
                                                     message: str) -> None:
    source = tmp_path / "copy"
    arrays = _wlasl100(source)
    train = source / "train_data_joint.npy"
    ids, labels = _official("wlasl100", "train", 6)
    if change == "labels":  # another class order: every label shifted by one
        with open(source / "train_label.pkl", "wb") as handle:
            pickle.dump((ids, [(int(v) + 1) % 100 for v in labels]), handle)
    elif change in ("nan", "empty"):
        arrays["train"][2, 2 if change == "empty" else 0] = 0.0 if change == "empty" else np.nan
        np.save(train, arrays["train"])
    elif change == "duplicate":
        with open(source / "val_label.pkl", "wb") as handle:
            val_ids, val_labels = _official("wlasl100", "val", 6)
            pickle.dump(([ids[0]] + val_ids[1:], [int(labels[0])] + list(val_labels[1:])),
                        handle)
    elif change == "foreign":
        for split in SPLITS:
            (source / f"{split}_data_joint.npy").unlink()
        write_samslr(source, {"train": (["nobody_1", "nobody_2"], [0, 1])})
    elif change == "no_labels":
        (source / "train_label.pkl").unlink()
    elif change == "shape":
        np.save(train, np.zeros((6, 3, 12, 25, 1), np.float32))
    elif change == "rows":
        with open(source / "train_label.pkl", "wb") as handle:
            pickle.dump((ids[:5], list(labels[:5])), handle)
    with pytest.raises(SlrbenchError, match=message) as error:
        prepare(read_copy("samslr", source, "wlasl100"), "wlasl100", prepared_dir("wlasl100"))
    assert "\n" not in str(error.value)
    assert not prepared_dir("wlasl100").exists()  # nothing half-written


def _pose(nodes: int = 27, layout: str = "samslr_27", size: int = 256) -> PoseSource:
    """Keypoints of every sample: 8 frames of `nodes` points, all detected."""
    return PoseSource(layout, (size, size), lambda i: np.ones((8, nodes, 3), np.float32))


def _split(ids: tuple[str, ...], labels: Any = "default", pose: PoseSource | None = None
           ) -> SourceSplit:
    values = np.arange(len(ids)) if isinstance(labels, str) else labels
    return SourceSplit(ids, None if values is None else np.asarray(values), pose=pose or _pose())


SLR500_IDS = ("P01_00_00_0", "P01_00_01_0", "P02_00_00_0")


def _copy_with(change: str) -> tuple[str, SourceCopy]:
    """(dataset, a copy as a reader could hand it over) with one thing wrong."""
    if change == "label_count":
        return "slr500", SourceCopy("samslr", {"train": _split(SLR500_IDS, [0, 1])})
    if change == "vocabulary_index":
        ids, _ = _official("wlasl100", "train", 2)
        table = official_split("wlasl100", "train")
        assert table is not None
        return "wlasl100", SourceCopy("nlaslr", {"train": _split(tuple(ids), [0, 2])},
                                      classes=tuple(table.classes[:2]))
    if change == "repeated":
        return "slr500", SourceCopy("samslr", {"train": _split(SLR500_IDS[:1] * 2)})
    if change == "no_label":
        return "slr500", SourceCopy("pose", {"train": _split(SLR500_IDS, None)})
    if change == "label_range":
        return "slr500", SourceCopy("samslr", {"train": _split(SLR500_IDS, [0, 1, 500])})
    if change == "split_name":
        return "nmfs-csl", SourceCopy("samslr", {"extra": _split(SLR500_IDS)})
    if change == "keypoint_shape":
        return "slr500", SourceCopy("samslr", {"train": _split(SLR500_IDS, pose=_pose(25))})
    assert change == "layouts"
    return "slr500", SourceCopy("samslr", {"train": _split(SLR500_IDS[:2]),
                                           "test": _split(SLR500_IDS[2:], [0],
                                                          _pose(size=512))})


@pytest.mark.parametrize(("change", "message"), [
    ("label_count", r"samslr split 'train': \(2,\) labels for 3 ids; expected one label per id"),
    ("vocabulary_index", r"nlaslr split 'train': labels outside 0\.\.1; expected indices of its "
                         "vocabulary"),
    ("repeated", r"samslr split 'train': ids P01_00_00_0 occur more than once; expected each "
                 "sample once"),
    ("no_label", r"pose split 'train', sample P01_00_00_0: no label, and slr500 ships none for "
                 "it; expected a copy with labels"),
    ("label_range", r"samslr split 'train', sample P02_00_00_0: label 500; expected 0\.\.499"),
    ("split_name", r"split 'extra': the dataset ships no official ids to place its samples; "
                   "expected splits named train, val, test"),
    ("keypoint_shape", r"sample P01_00_00_0: keypoints of shape \(8, 25, 3\); expected "
                       r"\(T, 27, 3\) for layout samslr_27"),
    ("layouts", r"samslr copy: keypoints in several layouts or frame sizes .*; expected one"),
])
def test_copy_errors_name_what_was_found(change: str, message: str) -> None:
    """The checks `prepare` makes on whatever a reader hands over (the reader-specific file
    errors are tested with their formats)."""
    dataset, copy = _copy_with(change)
    with pytest.raises(SlrbenchError, match=message) as error:
        prepare(copy, dataset, prepared_dir(dataset))
    assert "\n" not in str(error.value)
    assert not prepared_dir(dataset).exists()


def test_a_sample_without_its_video_is_refused_or_dropped(tmp_path: Path) -> None:
    copy = SourceCopy("samslr", {"train": _split(SLR500_IDS)})
    clip = tmp_path / "P01_00_00_0.mp4"
    videos = SourceCopy("videos", {"train": SourceSplit(SLR500_IDS[:1], videos=(clip,))})
    with pytest.raises(SlrbenchError, match=r"--videos: no video for 2 samples: P01_00_01_0, "
                                            r"P02_00_00_0; expected one per sample"):
        prepare(copy, "slr500", prepared_dir("slr500"), videos=videos)
    assert not prepared_dir("slr500").exists()


def test_drop_invalid_counts_what_it_drops(tmp_path: Path) -> None:
    source = tmp_path / "copy"
    arrays = _wlasl100(source)
    arrays["train"][1, 0, 3] = np.inf
    arrays["train"][4, 2] = 0.0  # no detected point in any frame
    np.save(source / "train_data_joint.npy", arrays["train"])
    result = prepare(read_copy("samslr", source, "wlasl100"), "wlasl100",
                     prepared_dir("wlasl100"), drop_invalid=True)
    assert result.report.found["train"] == 4
    assert dict(result.report.dropped) == {"NaN or infinite keypoints": 1,
                                           "no detected keypoint in any frame": 1}
    assert "dropped 1 samples: NaN or infinite keypoints" in result.report.lines()
    meta = json.loads((prepared_dir("wlasl100") / "meta.json").read_text())
    assert meta["counts"]["train"] == {"n_found": 4, "n_official": 1442}


def test_pickles_go_through_the_restricted_unpickler(tmp_path: Path) -> None:
    source = tmp_path / "copy"
    _wlasl100(source)

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pwned",))

    with open(source / "train_label.pkl", "wb") as handle:
        pickle.dump((["00335"], [Payload()]), handle)
    with pytest.raises(SlrbenchError, match=r"refused to load: the pickle asks for "
                                            r"'builtins\.print'"):
        read_copy("samslr", source, "wlasl100")


# ------------------------------------------------------------------------------- pyskl
def write_pyskl(path: Path, splits: dict[str, tuple[list[str], Any]], frames: int = 10,
                seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    annotations, points = [], {}
    for ids, labels in splits.values():
        for sample_id, label in zip(ids, labels):
            keypoint = rng.uniform(0, 512, (1, frames, 133, 2)).astype(np.float16)
            score = rng.uniform(0.1, 1, (1, frames, 133)).astype(np.float16)
            points[sample_id] = np.concatenate([keypoint[0], score[0, ..., None]], -1)
            annotations.append({"frame_dir": sample_id, "label": int(label),
                                "img_shape": (512, 512), "original_shape": (512, 512),
                                "total_frames": frames, "keypoint": keypoint,
                                "keypoint_score": score})
    data = {"split": {f"xsub_{s}": ids for s, (ids, _) in splits.items()},
            "annotations": annotations}
    path.write_bytes(pickle.dumps(data))
    return points


def test_pyskl_annotations_round_trip(tmp_path: Path) -> None:
    splits = {s: _official("autsl", s, 3) for s in SPLITS}
    points = write_pyskl(tmp_path / "autsl.pkl", splits)
    assert detect_format(tmp_path / "autsl.pkl") == "pyskl"
    prepare(read_copy("pyskl", tmp_path / "autsl.pkl", "autsl"), "autsl", prepared_dir("autsl"))
    dataset = PreparedDataset(prepared_dir("autsl"))
    for split, (ids, labels) in splits.items():
        assert dataset.spec.splits[split] == tuple(ids)
        np.testing.assert_array_equal(dataset.labels(split), labels)
        pose = dataset.pose(split)
        for row, sample_id in enumerate(ids):
            np.testing.assert_array_equal(pose.data[row], points[sample_id].astype(np.float32))
    assert dataset.spec.layout == "coco_wholebody_133" and dataset.spec.frame_size == (512, 512)


def test_pyskl_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps({"annotations": []}))
    with pytest.raises(SlrbenchError, match="not a pyskl annotation file"):
        read_copy("pyskl", tmp_path / "bad.pkl", "autsl")
    write_pyskl(tmp_path / "a.pkl", {"train": _official("autsl", "train", 2)})
    data = pickle.loads((tmp_path / "a.pkl").read_bytes())
    data["split"]["xsub_train"].append("signer99_sample1")
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(SlrbenchError, match=r"split 'xsub_train' lists 1 frame_dir\(s\) without "
                                            "an annotation"):
        read_copy("pyskl", tmp_path / "a.pkl", "autsl")


# ----------------------------------------------------------------------------- NLA-SLR
def write_nlaslr(folder: Path, splits: dict[str, tuple[list[str], Any]], classes: tuple[str, ...],
                 seed: int = 2) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    keypoints = {}
    names = {"train": "train", "val": "dev", "test": "test"}
    for split, (ids, labels) in splits.items():
        rows = []
        for sample_id, label in zip(ids, labels):
            frames = int(rng.integers(5, 15))
            keypoints[sample_id] = np.concatenate(
                [rng.uniform(0, 256, (frames, 133, 2)), rng.uniform(0.1, 1, (frames, 133, 1))],
                -1).astype(np.float32)
            rows.append({"name": sample_id, "label": classes[int(label)],
                         "video_file": f"WLASL2000/{sample_id}.mp4", "seq_len": frames})
        data = pickle.dumps(rows)
        path = folder / f"{names[split]}.pkl"
        if split == "test":  # NLA-SLR's split files may be gzip'd
            path.write_bytes(gzip.compress(data))
        else:
            path.write_bytes(data)
    with open(folder / "keypoints_hrnet_dark_coco_wholebody.pkl", "wb") as handle:
        pickle.dump(keypoints, handle)
    return keypoints


def test_nlaslr_labels_are_matched_by_gloss_string(tmp_path: Path) -> None:
    table = official_split("wlasl100", "train")
    assert table is not None
    splits = {s: _official("wlasl100", s, 8) for s in SPLITS}
    keypoints = write_nlaslr(tmp_path / "nla", splits, table.classes)
    copy = read_copy("nlaslr", tmp_path / "nla", "wlasl100")
    assert copy.classes == tuple(sorted(copy.classes))  # NLA-SLR's own (sorted) vocabulary
    assert not np.array_equal(copy.splits["train"].labels, splits["train"][1])
    prepare(copy, "wlasl100", prepared_dir("wlasl100"))
    dataset = PreparedDataset(prepared_dir("wlasl100"))
    for split, (ids, labels) in splits.items():
        np.testing.assert_array_equal(dataset.labels(split), labels)  # registry order again
        pose = dataset.pose(split)
        for row, sample_id in enumerate(ids):
            frames = len(keypoints[sample_id])
            assert pose.lengths[row] == frames
            np.testing.assert_array_equal(pose.data[row, :frames], keypoints[sample_id])
            assert not pose.data[row, frames:].any()  # zero-padded after its length


def test_nlaslr_errors_and_glosses_outside_the_subset(tmp_path: Path) -> None:
    table = official_split("wlasl100", "train")
    assert table is not None
    write_nlaslr(tmp_path / "nla", {"train": _official("wlasl100", "train", 3)}, table.classes)
    rows = pickle.loads((tmp_path / "nla" / "train.pkl").read_bytes())
    rows[0]["label"] = "not a wlasl gloss"  # a gloss outside WLASL100, on an id inside it
    (tmp_path / "nla" / "train.pkl").write_bytes(pickle.dumps(rows))
    with pytest.raises(SlrbenchError, match=rf"sample {rows[0]['name']}: label -1 \(out of "
                                            r"range\); expected the official \d+"):
        prepare(read_copy("nlaslr", tmp_path / "nla", "wlasl100"), "wlasl100",
                prepared_dir("wlasl100"))
    for row in rows:
        row["label"] = "zzz"
    (tmp_path / "nla" / "train.pkl").write_bytes(pickle.dumps(rows))
    with pytest.raises(SlrbenchError, match=r"vocabulary: none of its glosses \(e\.g\. zzz\) "
                                            "is a class of the dataset"):
        prepare(read_copy("nlaslr", tmp_path / "nla", "wlasl100"), "wlasl100",
                prepared_dir("wlasl100"))
    (tmp_path / "nla" / "keypoints_hrnet_dark_coco_wholebody.pkl").unlink()
    with pytest.raises(SlrbenchError, match=r"no keypoints_hrnet_dark_coco_wholebody\.pkl"):
        read_copy("nlaslr", tmp_path / "nla", "wlasl100")


def test_nlaslr_wlasl2000_files_prepare_as_wlasl100(tmp_path: Path) -> None:
    # NLA-SLR's WLASL2000 files read for WLASL100: glosses beyond the first 100 are outside.
    full = official_split("wlasl2000", "train")
    assert full is not None
    rows = [i for i, label in enumerate(full.labels) if label < 100][:4] + [
        i for i, label in enumerate(full.labels) if label >= 100][:6]
    write_nlaslr(tmp_path / "nla", {"train": ([full.ids[i] for i in rows], full.labels[rows])},
                 full.classes)
    result = prepare(read_copy("nlaslr", tmp_path / "nla", "wlasl100"), "wlasl100",
                     prepared_dir("wlasl100"))
    assert result.report.found["train"] == 4 and result.report.skipped_outside == 6


# ------------------------------------------------------------------ malformed files
def _samslr_case(root: Path, change: str) -> tuple[str, Path]:
    source = root / "copy"
    _wlasl100(source, n=3)
    if change == "samslr_not_npy":
        (source / "train_data_joint.npy").write_bytes(b"not an array")
    elif change == "samslr_not_a_pair":
        (source / "train_label.pkl").write_bytes(pickle.dumps({"names": [], "labels": []}))
    elif change == "samslr_labels_not_int":
        ids, _ = _official("wlasl100", "train", 3)
        (source / "train_label.pkl").write_bytes(pickle.dumps((ids, ["a", "b", "c"])))
    elif change == "samslr_no_arrays":
        for split in SPLITS:
            (source / f"{split}_data_joint.npy").unlink()
    return "samslr", source


def _pyskl_case(root: Path, change: str) -> tuple[str, Path]:
    path = root / "autsl.pkl"
    write_pyskl(path, {s: _official("autsl", s, 2) for s in ("train", "test")})
    data = pickle.loads(path.read_bytes())
    first = data["annotations"][0]
    if change == "pyskl_split_word":
        data["split"]["xsub_holdout"] = data["split"].pop("xsub_test")
    elif change == "pyskl_not_a_dict":
        data["annotations"][0] = [1, 2]
    elif change == "pyskl_no_key":
        del first["img_shape"]
    elif change == "pyskl_compressed":
        first["frame_inds"] = np.arange(10)
    elif change == "pyskl_keypoint_shape":
        first["keypoint"] = first["keypoint"][0]
    elif change == "pyskl_joints":
        for entry in data["annotations"]:
            entry["keypoint"] = entry["keypoint"][:, :, :25]
    elif change == "pyskl_frame_sizes":
        first["img_shape"] = (256, 256)
    elif change == "pyskl_no_label":
        del first["label"]
    elif change == "pyskl_two_splits":
        data["split"]["train"] = data["split"]["xsub_train"]
    elif change == "pyskl_two_pickles":
        (root / "other.pkl").write_bytes(b"")
        path = root
    if change != "pyskl_two_pickles":
        path.write_bytes(pickle.dumps(data))
    return "pyskl", path


def _nlaslr_case(root: Path, change: str) -> tuple[str, Path]:
    table = official_split("wlasl100", "train")
    assert table is not None
    folder = root / "nla"
    keypoints = write_nlaslr(folder, {"train": _official("wlasl100", "train", 3)},
                             table.classes)
    points = folder / "keypoints_hrnet_dark_coco_wholebody.pkl"
    if change == "nlaslr_split_rows":
        (folder / "train.pkl").write_bytes(pickle.dumps({"name": "x"}))
    elif change == "nlaslr_not_a_folder":
        return "nlaslr", points
    elif change == "nlaslr_keypoints_not_a_dict":
        points.write_bytes(pickle.dumps(list(keypoints.values())))
    elif change == "nlaslr_no_split_files":
        (folder / "train.pkl").unlink()
    elif change == "nlaslr_no_keypoints_for_a_name":
        points.write_bytes(pickle.dumps(dict(list(keypoints.items())[1:])))
    elif change == "nlaslr_keypoint_shape":
        points.write_bytes(pickle.dumps({k: v[..., :2] for k, v in keypoints.items()}))
    return "nlaslr", folder


@pytest.mark.parametrize(("change", "message"), [
    ("samslr_not_npy", r"train_data_joint\.npy: not a readable \.npy array \(.*\); expected "
                       r"float32 \(N, 3, T, 27, 1\)"),
    ("samslr_not_a_pair", r"train_label\.pkl: expected a \(names, labels\) pair of equal length"),
    ("samslr_labels_not_int", r"train_label\.pkl: labels that are not integers; expected int"),
    ("samslr_no_arrays", r"--from .*copy: no \{train,val,test\}_data_joint\.npy; expected "
                         "SAM-SLR arrays"),
    ("pyskl_split_word", r"autsl\.pkl: split 'xsub_holdout'; expected names ending in train, "
                         r"val \(valid, dev\) or test"),
    ("pyskl_not_a_dict", r"autsl\.pkl: annotation 0: found list; expected a dict"),
    ("pyskl_no_key", r"annotation 0: no 'img_shape'; expected frame_dir, label, img_shape"),
    ("pyskl_compressed", r"annotation 0: compressed annotation \(frame_inds\); expected the "
                         "dense"),
    ("pyskl_keypoint_shape", r"annotation 0 \(\w+\): keypoint shape \(10, 133, 2\); "
                             r"expected \(M, T, V, 2\)"),
    ("pyskl_joints", r"keypoints with \[25\] joints; expected one of \[27, 133\]"),
    ("pyskl_frame_sizes", r"img_shape differs between videos .*; expected one frame size"),
    ("pyskl_no_label", r"split 'xsub_\w+' has annotations without 'label'; expected an int "
                       "label per video"),
    ("pyskl_two_splits", r"autsl\.pkl: two splits map to 'train'; expected one each"),
    ("pyskl_two_pickles", r"--from .*: 2 \.pkl files; expected the one pyskl annotation pickle"),
    ("nlaslr_split_rows", r"train\.pkl: expected a list of dicts with 'name' and 'label'"),
    ("nlaslr_not_a_folder", r"--from .*\.pkl: not a folder; expected NLA-SLR's train\.pkl"),
    ("nlaslr_keypoints_not_a_dict", r"keypoints_hrnet_dark_coco_wholebody\.pkl: found list; "
                                    "expected a dict"),
    ("nlaslr_no_split_files", r"--from .*nla: no train\.pkl, dev\.pkl or test\.pkl; expected "
                              "NLA-SLR split files"),
    ("nlaslr_no_keypoints_for_a_name", r"train\.pkl: 1 samples without keypoints in "
                                       r"keypoints_hrnet_dark_coco_wholebody\.pkl, e\.g\. "),
    ("nlaslr_keypoint_shape", r"keypoints_hrnet_dark_coco_wholebody\.pkl \['\w+'\]: shape "
                              r"\(\d+, 133, 2\); expected \(T, 133, 3\)"),
])
def test_malformed_files_are_named_with_what_was_found(tmp_path: Path, change: str,
                                                       message: str) -> None:
    """Each reader's checks of its own files; keypoints are read (and checked) by `prepare`."""
    case = {"samslr": _samslr_case, "pyskl": _pyskl_case, "nlaslr": _nlaslr_case}
    fmt, path = case[change.split("_")[0]](tmp_path, change)
    dataset = "autsl" if fmt == "pyskl" else "wlasl100"
    with pytest.raises(SlrbenchError, match=message) as error:
        prepare(read_copy(fmt, path, dataset), dataset, prepared_dir(dataset))
    assert "\n" not in str(error.value)
    assert not prepared_dir(dataset).exists()


def test_formats_that_cannot_be_told_apart_ask_for_format(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SlrbenchError, match=r"notes\.txt: cannot tell the format of this file; "
                                            r"expected a folder, or a pyskl \.pkl"):
        detect_format(tmp_path / "notes.txt")
    with pytest.raises(SlrbenchError, match=r"no file of a known format .*; expected one, or "
                                            "say --format"):
        detect_format(tmp_path)


# ---------------------------------------------------------------------- no val split
@pytest.mark.parametrize("signers", [True, False])
def test_a_val_split_is_carved_where_the_dataset_has_none(tmp_path: Path, signers: bool) -> None:
    # SLR500 ships no ids here and has no val split. Its ids name the signer (P01..P35 train):
    # the registry's held-out signers P31-P35 become val; ids without a signer: 10 % per class.
    labels = np.arange(70) % 7
    ids = ([f"P{(i % 35) + 1:02d}_{i // 35 + 1:02d}_00_1." for i in range(70)] if signers
           else [f"clip{i:03d}" for i in range(70)])
    write_pyskl(tmp_path / "slr.pkl", {"train": (ids, labels), "test": (ids[:4], labels[:4])})
    with pytest.raises(SlrbenchError, match=r"sample \w+\.?: in the copy's splits"):
        prepare(read_copy("pyskl", tmp_path / "slr.pkl", "slr500"), "slr500",
                prepared_dir("slr500"))  # test repeats train ids
    test_ids = ["P40_01_00_1.", "P41_01_00_1.", "P42_01_00_1.", "P43_01_00_1."] if signers else [
        f"other{i}" for i in range(4)]
    write_pyskl(tmp_path / "slr.pkl", {"train": (ids, labels), "test": (test_ids, labels[:4])})
    result = prepare(read_copy("pyskl", tmp_path / "slr.pkl", "slr500"), "slr500",
                     prepared_dir("slr500"))
    dataset = PreparedDataset(prepared_dir("slr500"))
    val, train = dataset.spec.splits["val"], dataset.spec.splits["train"]
    assert not set(val) & set(train) and len(val) + len(train) == 70
    if signers:
        assert {i[:3] for i in val} == {"P31", "P32", "P33", "P34", "P35"} and len(val) == 10
        assert set(dataset.signers("val")) == {"P31", "P32", "P33", "P34", "P35"}
        assert "val carved from train: signers P31, P32, P33, P34, P35" in result.report.notes[0]
    else:
        assert len(val) == 7  # 7 classes of 10 samples: one each
        assert "10 % of each class" in result.report.notes[0]
        with pytest.raises(SlrbenchError, match="names no signers for 'val'"):
            dataset.signers("val")  # cross-fitting then folds by sample


# --------------------------------------------------------------------------- commands
def test_prepare_then_train_end_to_end(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "fixture"
    _wlasl100(source)
    code, out, err = cli("prepare", "--dataset", "wlasl100", "--from", str(source))
    assert code == 0, err
    assert "train: 6 samples / 1442 official (0.4 %)" in out
    code, out, err = cli("datasets", "wlasl100")
    assert "prepared: train 6/1442, val 6/338, test 6/258" in out
    results = tmp_path / "results"
    code, out, err = cli("run", "--method", "slgcn", "--dataset", "wlasl100", "--streams", "j",
                         "--epochs", "1", "--bootstrap", "0", "--quiet", "--results",
                         str(results))
    assert code == 0, err
    runs = [json.loads(p.read_text()) for p in results.glob("runs/*/run.json")]
    test = next(r for r in runs if r["split"] == "test")
    assert (test["n_eval"], test["n_official"]) == (6, 258)
    assert test["pose"]["extractor"].startswith("HRNet-W48") and test["pose"]["frame_flipped"]


def test_run_with_a_data_root_prepares_on_the_way(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "fixture"
    _wlasl100(source)
    code, _, err = cli("run", "--method", "slgcn", "--dataset", "wlasl100", "--streams", "j",
                       "--epochs", "1", "--bootstrap", "0", "--quiet", "--data-root",
                       str(source), "--results", str(tmp_path / "results"))
    assert code == 0, err
    assert (prepared_dir("wlasl100") / "meta.json").is_file()


@pytest.mark.parametrize(("args", "needles"), [
    (["--dataset", "wlasl100", "--from", "/nonexistent"], ["--from", "no such file"]),
    (["--dataset", "synthsign-tiny", "--from", "."], ["synthsign-tiny", "generated"]),
    (["--dataset", "wlasl100", "--from", ".", "--format", "xyz"], ["--format", "xyz", "samslr"]),
])
def test_prepare_errors_are_one_line(cli: Any, args: list[str], needles: list[str]) -> None:
    code, _, err = cli("prepare", *args)
    assert one_line(code, err, *needles).startswith("error: --")  # names the option


def _frame_folders(root: Path, ids: list[str], frames: int = 6) -> None:
    """One folder of PNG frames per sample (MS-ASL / NMFs-CSL style), a square moving across."""
    from PIL import Image

    for k, sample_id in enumerate(ids):
        folder = root / sample_id
        folder.mkdir(parents=True)
        for t in range(frames):
            image = np.full((24, 24, 3), 40 + 5 * (k % 10), np.uint8)
            image[8:14, 2 + 3 * t:8 + 3 * t] = 250
            Image.fromarray(image).save(folder / f"{t + 1:04d}.png")


def test_the_video_methods_train_from_keypoints_and_raw_videos(cli: Any, tmp_path: Path) -> None:
    table = official_split("wlasl100", "train")
    assert table is not None
    splits = {s: _official("wlasl100", s, 5) for s in SPLITS}
    write_nlaslr(tmp_path / "nla", splits, table.classes)
    _frame_folders(tmp_path / "videos", [i for ids, _ in splits.values() for i in ids])
    code, _, err = cli("prepare", "--dataset", "wlasl100", "--from", str(tmp_path / "nla"),
                       "--videos", str(tmp_path / "videos"))
    assert code == 0, err
    dataset = PreparedDataset(prepared_dir("wlasl100"))
    assert dataset.spec.modalities == ("pose", "rgb")
    frames = dataset.frame_cache("val", 16, 4).clip(0)
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
    for method in ("camfuse", "nla"):
        code, _, err = cli("run", "--method", method, "--dataset", "wlasl100", "--epochs", "1",
                           "--bootstrap", "0", "--quiet", "--results", str(tmp_path / method))
        assert code == 0, (method, err)
        assert len(list((tmp_path / method).glob("runs/*/run.json"))) >= 6
