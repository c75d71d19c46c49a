"""NLA-SLR's data files (docs/formats/nlaslr.md): split pickles `train.pkl`, `dev.pkl`,
`test.pkl` (plain or gzip'd; lists of dicts with `name`, `label` as a gloss string, `video_file`,
`seq_len`) and the keypoint pickle `keypoints_hrnet_dark_coco_wholebody.pkl` ({name: (T, 133,
3)} in pixels of 256 x 256 frames, 512 x 512 for NMFs-CSL). Labels are gloss strings, matched to
the registry's class list by string, never by NLA-SLR's own sorted-vocabulary index.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.datasets.official import canonical_id
from slrbench.datasets.sources import PoseSource, ReadOptions, SourceCopy, SourceSplit
from slrbench.errors import SlrbenchError
from slrbench.safe_pickle import load_pickle

SPLIT_FILES = {"train": "train", "dev": "val", "test": "test"}
KEYPOINTS = "keypoints_hrnet_dark_coco_wholebody.pkl"
EXTRACTOR = {"name": "HRNet-W48 COCO-WholeBody + DARK (NLA-SLR gen_pose.py)"}


def _split_file(folder: Path, name: str) -> Path | None:
    for candidate in (f"{name}.pkl", f"{name}.pkl.gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = load_pickle(path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "name" in r
                                             and "label" in r for r in rows):
        raise SlrbenchError(f"{path}: expected a list of dicts with 'name' and 'label' "
                            "(NLA-SLR split file)")
    return rows


def read_nlaslr(path: Path, options: ReadOptions) -> SourceCopy:
    folder = Path(path)
    if not folder.is_dir():
        raise SlrbenchError(f"--from {folder}: not a folder; expected NLA-SLR's train.pkl, "
                            f"dev.pkl, test.pkl and {KEYPOINTS}")
    keypoints_path = folder / KEYPOINTS
    if not keypoints_path.is_file():
        raise SlrbenchError(f"--from {folder}: no {KEYPOINTS}; expected NLA-SLR's keypoint "
                            "pickle beside its split files")
    keypoints = load_pickle(keypoints_path)
    if not isinstance(keypoints, dict):
        raise SlrbenchError(f"{keypoints_path}: found {type(keypoints).__name__}; expected a "
                            "dict {video name: (T, 133, 3) keypoints}")
    found = {name: _split_file(folder, name) for name in SPLIT_FILES}
    if not any(found.values()):
        raise SlrbenchError(f"--from {folder}: no train.pkl, dev.pkl or test.pkl; expected "
                            "NLA-SLR split files")
    tables = {name: _rows(p) for name, p in found.items() if p is not None}
    # Labels are gloss strings; they index the sorted glosses found here (NLA-SLR's own
    # vocabulary is the sorted train glosses) and prepare maps them to the registry by string.
    glosses = sorted({str(r["label"]) for rows in tables.values() for r in rows})
    index = {g: k for k, g in enumerate(glosses)}
    splits: dict[str, SourceSplit] = {}
    for name, rows in tables.items():
        names = [str(r["name"]) for r in rows]
        absent = [n for n in names if n not in keypoints]
        if absent:
            raise SlrbenchError(f"{found[name]}: {len(absent)} samples without keypoints in "
                                f"{KEYPOINTS}, e.g. {absent[:3]}; expected one entry per name")
        labels = np.array([index[str(r["label"])] for r in rows], dtype=np.int64)
        pose = PoseSource("coco_wholebody_133", _frame_size(options.dataset),
                          _loader(keypoints, names, keypoints_path), extractor=dict(EXTRACTOR))
        splits[SPLIT_FILES[name]] = SourceSplit(
            tuple(canonical_id(n, None) for n in names), labels, pose=pose)
    files = tuple(p for p in (*found.values(), keypoints_path) if p is not None)
    return SourceCopy("nlaslr", splits, classes=tuple(glosses), files=files)


def _frame_size(dataset: str) -> tuple[int, int]:
    return (512, 512) if dataset == "nmfs-csl" else (256, 256)


def _loader(keypoints: dict[str, Any], names: list[str],
            source: Path) -> Callable[[int], np.ndarray]:
    def load(row: int) -> np.ndarray:
        points = np.asarray(keypoints[names[row]], dtype=np.float32)
        if points.ndim != 3 or points.shape[1:] != (133, 3):
            raise SlrbenchError(f"{source} [{names[row]!r}]: shape {points.shape}; expected "
                                "(T, 133, 3)")
        return points

    return load
