"""Readers of the dataset copies users arrive with (docs/datasets/prepare.md), by format name.
Each entry is "module:function" inside this package, imported on demand; the function has the
`slrbench.datasets.sources` contract: read(path, options) -> SourceCopy."""

from __future__ import annotations

from pathlib import Path

from slrbench.datasets.sources import SourceCopy
from slrbench.errors import SlrbenchError

FORMATS: dict[str, str] = {
    "samslr": "samslr:read_samslr",
    "pyskl": "pyskl:read_pyskl",
    "nlaslr": "nlaslr:read_nlaslr",
    "pose": "pose_files:read_pose_files",
    "video": "videos:read_videos",
}


def read_copy(fmt: str, path: Path, dataset: str) -> SourceCopy:
    """Read a copy in format `fmt` for the registry dataset `dataset`."""
    import importlib

    from slrbench.datasets.registry import get_entry
    from slrbench.datasets.sources import ReadOptions

    if fmt not in FORMATS:
        raise SlrbenchError(f"--format: found '{fmt}'; expected one of {', '.join(FORMATS)}")
    module, function = FORMATS[fmt].split(":")
    reader = getattr(importlib.import_module(f"slrbench.datasets.readers.{module}"), function)
    get_entry(dataset)  # an unknown dataset fails before any file is read
    copy: SourceCopy = reader(Path(path), ReadOptions(dataset))
    return copy


def detect_format(path: Path) -> str:
    """The format of a copy from its files (docs/datasets/prepare.md#formats)."""
    path = Path(path)
    if path.is_file():
        if path.suffix in (".pkl", ".pickle", ".gz"):
            return "pyskl"
        raise SlrbenchError(f"--from {path}: cannot tell the format of this file; expected a "
                            "folder, or a pyskl .pkl (or say --format)")
    names = {p.name for p in path.iterdir()}
    if any(n.endswith("_data_joint.npy") for n in names):
        return "samslr"
    if "keypoints_hrnet_dark_coco_wholebody.pkl" in names:
        return "nlaslr"
    if any(p.suffix == ".pose" for p in path.rglob("*.pose")):
        return "pose"
    if sum(n.endswith(".pkl") for n in names) == 1:
        return "pyskl"
    from slrbench.datasets.video_io import VIDEO_SUFFIXES

    if any(p.suffix.lower() in VIDEO_SUFFIXES for p in path.rglob("*")):
        return "video"
    raise SlrbenchError(f"--from {path}: no file of a known format (SAM-SLR arrays, an NLA-SLR "
                        "keypoint pickle, a pyskl pickle, .pose files, videos); expected one, "
                        "or say --format")

