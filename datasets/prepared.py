"""The prepared copy of a real dataset (docs/datasets/prepare.md#the-prepared-copy): what
`slrbench prepare` writes and training reads, one folder per registry name under
`<cache>/prepared/`:

    meta.json              what was read, from where, counts, layout, extractor, notes
    <split>/ids.txt        sample ids in official order (one per line)
    <split>/labels.npy     int64 class indices in the registry's class order
    <split>/signers.txt    signer ids, when the copy names them
    <split>/pose.npy       float32 (N, T_max, V, 3) keypoints, zero-padded, memory-mapped
    <split>/lengths.npy    int64 frames per sample
    <split>/videos.txt     the source video (or frame folder) of each sample, when given
    frames/                the decoded-frame cache of the video methods, filled on first use

The folder is written under a temporary name and renamed into place, so a prepared copy is
complete or absent; `PreparedDataset` implements the Dataset protocol over it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.datasets.base import SPLITS, DatasetSpec, PoseArrays, sha256_lines
from slrbench.datasets.frame_cache import FrameCache
from slrbench.errors import SlrbenchError

PREPARED_VERSION = 1
META = "meta.json"


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlrbenchError(f"{path}: no such file; expected a copy written by `slrbench "
                            "prepare` (docs/datasets/prepare.md)") from None
    except (OSError, ValueError) as exc:
        raise SlrbenchError(f"{path}: unreadable ({exc}); expected the JSON `slrbench prepare` "
                            "writes (prepare the dataset again)") from None
    if not isinstance(meta, dict) or meta.get("prepared_version") != PREPARED_VERSION:
        found = meta.get("prepared_version") if isinstance(meta, dict) else None
        raise SlrbenchError(f"{path}: prepared_version {found!r}; expected {PREPARED_VERSION} "
                            "(prepare the dataset again with this slrbench)")
    return meta


def _frame_size(pose: dict[str, Any]) -> tuple[int, int] | None:
    size = pose.get("frame_size")
    return (int(size[0]), int(size[1])) if size else None


def _lines(path: Path) -> tuple[str, ...]:
    return tuple(path.read_text(encoding="utf-8").splitlines())


class PreparedDataset:
    """A prepared copy as a `Dataset`: keypoints memory-mapped, frames decoded on first use."""

    def __init__(self, folder: Path) -> None:
        from slrbench.datasets.registry import get_entry

        self.folder = folder
        self.meta = read_meta(folder)
        entry = get_entry(self.meta["dataset"])
        splits = {s: _lines(folder / s / "ids.txt") for s in SPLITS if (folder / s).is_dir()}
        pose = self.meta.get("pose") or {}
        modalities = tuple(m for m, present in (("pose", bool(pose)),
                                                ("rgb", bool(self.meta.get("videos"))))
                           if present)
        extractor = pose.get("extractor") or {}
        self.spec = DatasetSpec(
            name=entry.name,
            version=f"prepared:{self.meta['content_sha256'][:16]}",
            title=entry.title,
            classes=tuple(self.meta["classes"]),
            splits=splits,
            modalities=modalities,
            layout=pose.get("layout"),
            frame_size=_frame_size(pose),
            fps=pose.get("fps"),
            signer_independent=entry.signer_independent,
            license=entry.license,
            notes=tuple(self.meta.get("notes", ())),
            extra={"pose_extractor": " ".join(str(extractor[k]) for k in ("name", "version")
                                              if k in extractor) or "unknown",
                   "frame_flipped": extractor.get("frame_flipped") == "true",
                   "prepared": {k: self.meta[k] for k in ("created", "sources", "counts")}},
            official_sizes={split: int(c["n_official"]) for split, c in
                            self.meta["counts"].items() if c.get("n_official")},
        )

    def _split_dir(self, split: str) -> Path:
        if split not in self.spec.splits:
            raise SlrbenchError(f"{self.spec.name}: no '{split}' split in the prepared copy "
                                f"{self.folder}; expected one of {', '.join(self.spec.splits)}")
        return self.folder / split

    def labels(self, split: str) -> np.ndarray:
        return np.load(self._split_dir(split) / "labels.npy", allow_pickle=False)

    def signers(self, split: str) -> np.ndarray:
        """Signer ids in id order; an error where the copy names none (cross-fitting then folds
        by sample instead of by signer)."""
        path = self._split_dir(split) / "signers.txt"
        if not path.exists():
            raise SlrbenchError(f"{self.spec.name}: the prepared copy names no signers for "
                                f"'{split}'; expected signers.txt (the copy's format or ids "
                                "carry none)")
        return np.array(_lines(path), dtype=object)

    def pose(self, split: str) -> PoseArrays:
        folder = self._split_dir(split)
        if self.spec.layout is None or not (folder / "pose.npy").exists():
            raise SlrbenchError(f"{self.spec.name}: the prepared copy {self.folder} has no "
                                "keypoints; expected one prepared from a keypoint format "
                                "(docs/datasets/prepare.md)")
        data = np.load(folder / "pose.npy", mmap_mode="r", allow_pickle=False)
        lengths = np.load(folder / "lengths.npy", allow_pickle=False)
        assert self.spec.frame_size is not None
        return PoseArrays(data, lengths, self.spec.layout, self.spec.frame_size)

    def videos(self, split: str) -> tuple[str, ...]:
        path = self._split_dir(split) / "videos.txt"
        if not path.exists():
            raise SlrbenchError(f"{self.spec.name}: the prepared copy {self.folder} has no "
                                "videos; expected one prepared with --videos DIR "
                                "(docs/datasets/prepare.md)")
        return _lines(path)

    def frame_cache(self, split: str, size: int = 64, frames: int = 16) -> FrameCache:
        """Frames of every clip decoded from its source video on first use and kept in
        `frames/` (docs/formats/video.md#decoded-frame-cache)."""
        from slrbench.datasets.video_io import decode_clip

        videos = self.videos(split)
        path = self.folder / "frames" / f"rgb_{split}_{int(size)}px_{int(frames)}f.npy"
        return FrameCache(len(videos), (int(frames), int(size), int(size)),
                          lambda i: decode_clip(Path(videos[i]), int(size), int(frames)), path)


def content_digest(ids: dict[str, tuple[str, ...]], labels: dict[str, np.ndarray]) -> str:
    """A short identity of a prepared copy: its ids and labels (the version records carry)."""
    parts = [f"{s}:{sha256_lines(ids[s])}:{sha256_lines([str(v) for v in labels[s]])}"
             for s in sorted(ids)]
    return sha256_lines(parts)
