"""pyskl annotation pickles (docs/formats/pyskl.md), CAMFuse's keypoint format: one pickle with
`{"split": {name: [frame_dir, ...]}, "annotations": [per-video dict, ...]}`; each annotation has
`frame_dir`, `label`, `img_shape` (H, W) and dense `keypoint` (M, T, V, 2) with `keypoint_score`
(M, T, V), in pixels of `img_shape`. The first person is read (slrbench's methods read one).
Split names such as `xsub_train` map to their last word. The layout follows from V: 133 is
COCO-WholeBody, 27 the SAM-SLR joints (other joint counts are refused with a message).
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

LAYOUTS = {133: "coco_wholebody_133", 27: "samslr_27"}
SPLIT_WORDS = {"train": "train", "val": "val", "valid": "val", "validation": "val",
               "dev": "val", "test": "test"}


def _split_name(name: str, path: Path) -> str:
    word = name.rsplit("_", 1)[-1].lower()
    if word not in SPLIT_WORDS:
        raise SlrbenchError(f"{path}: split '{name}'; expected names ending in train, val "
                            "(valid, dev) or test")
    return SPLIT_WORDS[word]


def _annotation(entry: Any, path: Path, index: int) -> dict[str, Any]:
    where = f"{path}: annotation {index}"
    if not isinstance(entry, dict):
        raise SlrbenchError(f"{where}: found {type(entry).__name__}; expected a dict")
    for key in ("frame_dir", "keypoint", "img_shape"):
        if key not in entry:
            raise SlrbenchError(f"{where}: no '{key}'; expected frame_dir, label, img_shape, "
                                "keypoint and keypoint_score (pyskl's dense format)")
    if "frame_inds" in entry:
        raise SlrbenchError(f"{where}: compressed annotation (frame_inds); expected the dense "
                            "(M, T, V, 2) format pyskl writes for custom datasets")
    keypoint = np.asarray(entry["keypoint"])
    if keypoint.ndim != 4 or keypoint.shape[-1] not in (2, 3):
        raise SlrbenchError(f"{where} ({entry['frame_dir']}): keypoint shape {keypoint.shape}; "
                            "expected (M, T, V, 2)")
    entry["keypoint"] = keypoint  # converted once (lists in some pickles), read as an array
    return entry


def read_pyskl(path: Path, options: ReadOptions) -> SourceCopy:
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.pkl"))
        if len(found) != 1:
            raise SlrbenchError(f"--from {path}: {len(found)} .pkl files; expected the one pyskl "
                                "annotation pickle (or give its path)")
        path = found[0]
    data = load_pickle(path)
    if not (isinstance(data, dict) and isinstance(data.get("annotations"), list)
            and isinstance(data.get("split"), dict)):
        raise SlrbenchError(f"{path}: not a pyskl annotation file; expected a dict with "
                            "'split' and 'annotations'")
    entries = [_annotation(a, path, i) for i, a in enumerate(data["annotations"])]
    by_id = {str(a["frame_dir"]): a for a in entries}
    sizes = {tuple(int(v) for v in a["img_shape"]) for a in entries}
    nodes = {a["keypoint"].shape[2] for a in entries}
    if len(nodes) != 1 or next(iter(nodes)) not in LAYOUTS:
        raise SlrbenchError(f"{path}: keypoints with {sorted(nodes)} joints; expected one of "
                            f"{sorted(LAYOUTS)} (COCO-WholeBody 133, SAM-SLR 27)")
    if len(sizes) != 1:
        raise SlrbenchError(f"{path}: img_shape differs between videos ({sorted(sizes)[:3]}); "
                            "expected one frame size (rescale the keypoints first)")
    height, width = next(iter(sizes))
    layout = LAYOUTS[next(iter(nodes))]
    splits: dict[str, SourceSplit] = {}
    for name, members in data["split"].items():
        target = _split_name(str(name), path)
        missing = [str(m) for m in members if str(m) not in by_id]
        if missing:
            raise SlrbenchError(f"{path}: split '{name}' lists {len(missing)} frame_dir(s) "
                                f"without an annotation, e.g. {missing[:3]}")
        chosen = [by_id[str(m)] for m in members]
        if any("label" not in a for a in chosen):
            raise SlrbenchError(f"{path}: split '{name}' has annotations without 'label'; "
                                "expected an int label per video")
        ids = tuple(canonical_id(str(a["frame_dir"]), None) for a in chosen)
        labels = np.array([int(a["label"]) for a in chosen], dtype=np.int64)
        pose = PoseSource(layout, (width, height), _loader(chosen),
                          extractor={"name": "unknown (pyskl annotation)"})
        if target in splits:
            raise SlrbenchError(f"{path}: two splits map to '{target}'; expected one each")
        splits[target] = SourceSplit(ids, labels, pose=pose)
    return SourceCopy("pyskl", splits, files=(path,))


def _loader(chosen: list[dict[str, Any]]) -> Callable[[int], np.ndarray]:
    def load(row: int) -> np.ndarray:
        entry = chosen[row]
        keypoint = np.asarray(entry["keypoint"], dtype=np.float32)[0, ..., :2]  # first person
        if "keypoint_score" in entry:
            score = np.asarray(entry["keypoint_score"], dtype=np.float32)[0]
        else:  # 3-D skeletons carry no score: every joint counts as detected
            score = np.ones(keypoint.shape[:2], dtype=np.float32)
        return np.concatenate([keypoint, score[..., None]], axis=-1)

    return load
