"""Official ids, labels and class lists, read without any video or keypoint array: what an
imported score file is checked against (docs/datasets/README.md#official-metadata).

SynthSign's come from its generator's metadata (cheap: no arrays are generated); AUTSL's,
WLASL's (all four subsets) and MS-ASL's (val and test of all four subsets) from the files
shipped in `datasets/metadata/` (datasets/metadata/README.md). Other datasets ship no ids: for
them only the number of classes and the split sizes are known.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from slrbench.datasets.base import sha256_lines
from slrbench.errors import SlrbenchError


@dataclass(frozen=True)
class SplitTable:
    """One official split: ids in registry order, their labels and the class list."""

    dataset: str
    split: str
    ids: tuple[str, ...]
    labels: np.ndarray  # int64, class index per id
    classes: tuple[str, ...]  # class names in class-index order
    _rows: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rows.update((sample_id, row) for row, sample_id in enumerate(self.ids))

    def row(self, sample_id: str) -> int | None:
        return self._rows.get(sample_id)

    @property
    def vocab_sha256(self) -> str:
        return sha256_lines(self.classes)

    @property
    def split_sha256(self) -> str:
        return sha256_lines(self.ids)


# A file name's extension and modality suffix: `signer1_sample5_color.mp4` -> `signer1_sample5`.
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_MODALITY_SUFFIX = re.compile(r"_(color|depth|rgb|flow|pose|skeleton)$", re.IGNORECASE)


def canonical_id(name: str, table: SplitTable | None) -> str:
    """The registry id a score file's sample name stands for: the name itself, else its base
    name without extensions and modality suffixes (`signer1_sample5_color.mp4` ->
    `signer1_sample5`)."""
    candidates = [name]
    base = re.split(r"[\\/]", name)[-1]
    while True:
        candidates.append(base)
        stripped = _MODALITY_SUFFIX.sub("", _EXTENSION.sub("", base))
        if stripped == base or not stripped:
            break
        base = stripped
    if table is not None:
        for candidate in candidates:
            if table.row(candidate) is not None:
                return candidate
    return candidates[-1]



# Datasets whose sample ids name the signer: the signer is the first group.
_SIGNER_IN_ID = {"autsl": re.compile(r"^(signer\d+)_sample\d+$"),
                 "slr500": re.compile(r"^(P\d+)_\d+_\d+_\d+\.?$")}


def signer_of(dataset: str, sample_id: str) -> str | None:
    """The signer a sample id names (AUTSL `signer3_sample7`, SLR500 `P09_01_00_3.`), or None
    where the dataset's ids do not name one."""
    pattern = _SIGNER_IN_ID.get(dataset)
    found = pattern.match(sample_id) if pattern is not None else None
    return found.group(1) if found else None


def official_split(dataset: str, split: str) -> SplitTable | None:
    """The split's official table, or None where the registry ships no ids for it."""
    from slrbench.datasets.registry import get_entry

    entry = get_entry(dataset)
    if entry.synthetic:
        return _synthsign_split(entry.name, entry.synthsign_preset or "tiny", split)
    if entry.name == "autsl":
        return _autsl_split(split)
    if entry.name.startswith("wlasl"):
        return _wlasl_split(entry.name, entry.num_classes, split)
    if entry.name.startswith("msasl") and split in ("val", "test"):  # train is not released
        return _msasl_split(entry.name, entry.num_classes, split)
    return None


def msasl_id(split: str, url: str, start_time: float, end_time: float) -> str:
    """MS-ASL's sample id: MS-ASL has no id field, so slrbench names a clip by its split and
    the hash of (url, start_time, end_time), unique within each split
    (docs/datasets/msasl.md#sample-ids)."""
    key = f"{url}\t{float(start_time)!r}\t{float(end_time)!r}"
    return f"{split}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:12]}"


@lru_cache(maxsize=16)
def _synthsign_split(name: str, preset: str, split: str) -> SplitTable:
    from slrbench.datasets.synthsign import SynthSign, SynthSignConfig

    synth = SynthSign(SynthSignConfig.preset(preset, seed=0))  # metadata only, no arrays
    return SplitTable(name, split, synth.ids(split), synth.labels(split),
                      tuple(c.gloss for c in synth.classes))


_AUTSL_FILES = {"train": "train_labels.csv.gz", "val": "validation_labels.csv.gz",
                "test": "test_labels.csv.gz"}


@lru_cache(maxsize=4)
def _autsl_split(split: str) -> SplitTable:
    if split not in _AUTSL_FILES:
        raise SlrbenchError(f"--split: found '{split}' for autsl; expected one of "
                            f"{', '.join(_AUTSL_FILES)}")
    classes = _autsl_classes()
    rows = list(csv.reader(io.StringIO(_read_text("autsl", _AUTSL_FILES[split]))))
    ids = tuple(row[0] for row in rows)
    labels = np.array([int(row[1]) for row in rows], dtype=np.int64)
    return SplitTable("autsl", split, ids, labels, classes)


@lru_cache(maxsize=1)
def _autsl_classes() -> tuple[str, ...]:
    """English glosses in class-id order (the shipped list's `EN` column)."""
    rows = list(csv.DictReader(io.StringIO(_read_text("autsl", "SignList_ClassId_TR_EN.csv"))))
    ids = [int(row["ClassId"]) for row in rows]
    if ids != list(range(len(ids))):
        raise SlrbenchError("datasets/metadata/autsl/SignList_ClassId_TR_EN.csv: class ids are "
                            "not 0..K-1 in order; expected the shipped file unchanged")
    return tuple(row["EN"] for row in rows)


@lru_cache(maxsize=16)
def _wlasl_split(name: str, num_classes: int, split: str) -> SplitTable:
    """WLASL<K>: the v0.3 instances of the first K glosses (the gloss order is the class
    index), ids in sorted order."""
    if split not in _SPLIT_NAMES:
        raise SlrbenchError(f"--split: found '{split}' for {name}; expected one of "
                            f"{', '.join(_SPLIT_NAMES)}")
    chosen = [(vid, int(label)) for vid, part, label in _rows("wlasl", "instances.tsv.gz")
              if part == split and int(label) < num_classes]
    classes = _lines("wlasl", "classes.txt")[:num_classes]
    return SplitTable(name, split, tuple(v for v, _ in chosen),
                      np.array([label for _, label in chosen], dtype=np.int64), classes)


_SPLIT_NAMES = ("train", "val", "test")


@lru_cache(maxsize=16)
def _msasl_split(name: str, num_classes: int, split: str) -> SplitTable:
    """MS-ASL<K>: the released val or test clips with label < K, ids by `msasl_id`."""
    chosen = [(row[0], int(row[2])) for row in _rows("msasl", "clips.tsv.gz")
              if row[1] == split and int(row[2]) < num_classes]
    classes = _lines("msasl", "classes.txt")[:num_classes]
    return SplitTable(name, split, tuple(i for i, _ in chosen),
                      np.array([label for _, label in chosen], dtype=np.int64), classes)


@lru_cache(maxsize=8)
def _rows(folder: str, name: str) -> tuple[tuple[str, ...], ...]:
    """The tab-separated rows of a shipped file, parsed once for all subsets and splits."""
    return tuple(tuple(line.split("\t")) for line in _read_text(folder, name).splitlines())


@lru_cache(maxsize=8)
def _lines(folder: str, name: str) -> tuple[str, ...]:
    return tuple(_read_text(folder, name).splitlines())


def _read_text(folder: str, name: str) -> str:
    data = resources.files("slrbench.datasets").joinpath("metadata", folder, name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")
