"""SAM-SLR-lineage keypoint arrays (docs/formats/samslr-arrays.md), as distributed for SL-GCN,
DSTA-SLR and LGF-SLR: a folder with, per split, `{split}_data_joint.npy` float32 (N, 3, T, 27, 1)
= (x, y, score) x frames x `samslr_27` joints x one person, and `{split}_label.pkl`, a pickle of
(sample names, int labels) in row order (AUTSL's val labels: `val_gt.pkl`).

The arrays are memory-mapped; rows are read when prepare asks for them. The frames were flipped
at extraction upstream (x in mirrored-frame pixels), which the copy records. T is the fixed
length the arrays were padded or cut to (150 upstream): the loop padding is part of the data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from slrbench.datasets.official import canonical_id
from slrbench.datasets.sources import PoseSource, ReadOptions, SourceCopy, SourceSplit
from slrbench.errors import SlrbenchError
from slrbench.safe_pickle import load_pickle

LAYOUT = "samslr_27"
# The copy's split names -> slrbench's ("test" in DSTA-SLR's copies may be val + test merged:
# prepare sorts the samples by their official split).
SPLIT_NAMES = {"train": "train", "val": "val", "test": "test"}
LABEL_FILES = {"val": ("val_label.pkl", "val_gt.pkl")}
# SAM-SLR's source frames: AUTSL's 512 x 512 videos; other datasets' sizes are per video and
# not stored in the arrays, so the x, y range found is used (docs/formats/samslr-arrays.md).
EXTRACTOR = {"name": "HRNet-W48 COCO-WholeBody (SAM-SLR wholepose)", "frame_flipped": "true"}


def _label_file(folder: Path, split: str) -> Path | None:
    for name in LABEL_FILES.get(split, (f"{split}_label.pkl",)):
        if (folder / name).is_file():
            return folder / name
    return None


def _joint_array(path: Path) -> np.ndarray:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise SlrbenchError(f"{path}: not a readable .npy array ({exc}); expected float32 "
                            "(N, 3, T, 27, 1) (some distributed copies have a broken header: "
                            "docs/formats/samslr-arrays.md#known-problems)") from None
    if data.ndim != 5 or data.shape[1] != 3 or data.shape[3] != 27 or data.shape[4] < 1:
        raise SlrbenchError(f"{path}: shape {data.shape}; expected (N, 3, T, 27, M) with "
                            "x / y / score channels and the 27 SAM-SLR joints")
    return data


def _names_and_labels(path: Path, rows: int) -> tuple[tuple[str, ...], np.ndarray]:
    pair = load_pickle(path)
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2
            and len(pair[0]) == len(pair[1])):
        raise SlrbenchError(f"{path}: expected a (names, labels) pair of equal length, as "
                            "SL-GCN's label pickles")
    names = tuple(canonical_id(str(n), None) for n in pair[0])
    try:
        labels = np.array([int(v) for v in pair[1]], dtype=np.int64)
    except (TypeError, ValueError):
        raise SlrbenchError(f"{path}: labels that are not integers; expected int class "
                            "indices") from None
    if len(names) != rows:
        raise SlrbenchError(f"{path}: {len(names)} names for {rows} rows of the joint array; "
                            "expected one per row")
    return names, labels


def read_samslr(path: Path, options: ReadOptions) -> SourceCopy:
    folder = Path(path)
    if not folder.is_dir():
        raise SlrbenchError(f"--from {folder}: not a folder; expected one holding "
                            "{split}_data_joint.npy and {split}_label.pkl files")
    splits: dict[str, SourceSplit] = {}
    files: list[Path] = []
    extent = 0.0
    arrays: list[np.ndarray] = []
    for split in SPLIT_NAMES:
        joints = folder / f"{split}_data_joint.npy"
        if not joints.is_file():
            continue
        labels_path = _label_file(folder, split)
        if labels_path is None:
            raise SlrbenchError(f"{joints}: no label file beside it; expected {split}_label.pkl"
                                + (" or val_gt.pkl" if split == "val" else ""))
        data = _joint_array(joints)
        names, labels = _names_and_labels(labels_path, data.shape[0])
        arrays.append(data)
        extent = max(extent, _extent(data))
        splits[SPLIT_NAMES[split]] = SourceSplit(names, labels, pose=None)
        files += [joints, labels_path]
    if not splits:
        raise SlrbenchError(f"--from {folder}: no {{train,val,test}}_data_joint.npy; expected "
                            "SAM-SLR arrays (docs/formats/samslr-arrays.md)")
    size = _frame_size(extent)
    for (name, found), data in zip(list(splits.items()), arrays):
        pose = PoseSource(LAYOUT, size, _loader(data), extractor=dict(EXTRACTOR))
        splits[name] = SourceSplit(found.ids, found.labels, pose=pose)
    return SourceCopy("samslr", splits, files=tuple(files),
                      notes=(f"SAM-SLR arrays of {arrays[0].shape[2]} frames (loop-padded or "
                             "cut upstream); x in mirrored-frame pixels",))


def _loader(data: np.ndarray) -> Callable[[int], np.ndarray]:
    def load(row: int) -> np.ndarray:
        # (3, T, 27, M) -> (T, 27, 3), first person.
        return np.ascontiguousarray(np.asarray(data[row, :, :, :, 0]).transpose(1, 2, 0),
                                    dtype=np.float32)

    return load


def _extent(data: np.ndarray) -> float:
    """The largest finite x or y in a sample of rows (arrays can be large: 64 rows suffice)."""
    rows = np.asarray(data[:: max(1, data.shape[0] // 64), :2])
    finite = rows[np.isfinite(rows)]
    return float(finite.max(initial=0.0))


def _frame_size(extent: float) -> tuple[int, int]:
    """The frame the coordinates live in: the smallest of the usual source sizes that holds
    them (AUTSL 512), else the extent rounded up."""
    for side in (256, 512, 1024):
        if extent <= side:
            return side, side
    return int(np.ceil(extent)), int(np.ceil(extent))
