"""Reader for the VSL arrays (docs/formats/vsl-arrays.md, docs/datasets/vsl.md): split CSVs with
the columns `,file,label`, one uint8 (24, 224, 224, 3) BGR video array and one (steps, 12)
sensor array per clip under two roots, joined by their relative path (the sample id).

Splits: upstream has train and test only; slrbench holds out the training signer N12 as val
(docs/datasets/vsl.md#splits). Class index = alphabetical position of the gloss (upstream's
LabelEncoder). Arrays are read with `allow_pickle=False`; every file is checked before use and
a bad one is named in a one-line error with what was found and what was expected.

A prepared copy lives in one folder (`load_dataset("vsl")` reads
`<SLRBENCH_CACHE>/prepared/vsl/`):

    train.csv, test.csv      the upstream split files (or any with the same columns)
    video/<gloss>/<signer>_<gloss>_<k>.npy
    sensor/<gloss>/<signer>_<gloss>_<k>.npy
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from slrbench.datasets.base import SPLITS, DatasetSpec, PoseArrays, SensorArrays
from slrbench.datasets.frame_cache import grid_positions
from slrbench.errors import SlrbenchError

CLASSES: tuple[str, ...] = (
    "an_mung", "an_ui", "ap_dung", "ban_khoan", "be_mac", "benh_nhan", "biet", "bieu_tang",
    "bo_y_te", "cach_ly", "cam_do", "cam_on", "can", "chap_nhan", "chay", "cho", "dau", "day_do",
    "ghet", "giup", "ham_mo", "hi_sinh", "ho", "ket_hon", "khai_bao", "khau_trang",
    "khu_cach_ly", "lay_benh", "lo_lang", "nghi_ngoi", "nho", "noi_xau", "non_oi", "phat",
    "phong_van", "phuc_hoi", "san_se", "sot", "tap_luyen", "tham", "that_lac", "thich",
    "thuong", "u_benh", "ung_ho", "vang_loi", "virus", "xin_phep", "xuat_vien", "yeu",
)
VIDEO_SHAPE = (24, 224, 224, 3)
SENSOR_CHANNELS = 12
# The channel meaning is inferred upstream (two wrist units x accelerometer and gyroscope), so
# the channels get neutral names.
SENSOR_NAMES = tuple(f"imu_{i:02d}" for i in range(SENSOR_CHANNELS))
VAL_SIGNER = "N12"  # slrbench's held-out training signer (design)
CSV_HEADER = ["", "file", "label"]
SPLIT_FILES = {"train": "train.csv", "test": "test.csv"}
# <signer>_<gloss>_<k>.npy inside the folder <gloss>; glosses contain underscores themselves.
_NAME = re.compile(r"(?P<signer>[^_/]+)_(?P<gloss>.+)_(?P<k>\d+)\.npy")


@dataclass(frozen=True)
class Row:
    sample_id: str  # the relative path
    label: int
    signer: str


def read_split_csv(path: Path) -> list[Row]:
    """Rows of one split file: `,file,label` with or without its header line (the shuffled
    upstream copies have none). Each path must be `<gloss>/<signer>_<gloss>_<k>.npy` with the
    row's gloss, and each gloss one of the 50 classes."""
    if not path.is_file():
        raise SlrbenchError(f"{path}: no such split file; expected the VSL CSV with columns "
                            "',file,label'")
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, fields in enumerate(csv.reader(handle), start=1):
            if line == 1 and fields == CSV_HEADER:
                continue
            if len(fields) != 3:
                raise SlrbenchError(f"{path}:{line}: found {len(fields)} columns; expected 3 "
                                    "(',file,label': row index, relative path, gloss)")
            rows.append(_row(path, line, fields[1], fields[2]))
    if not rows:
        raise SlrbenchError(f"{path}: found no rows; expected one clip per line")
    seen: set[str] = set()
    for row in rows:
        if row.sample_id in seen:
            raise SlrbenchError(f"{path}: file '{row.sample_id}' listed twice; expected each "
                                "clip once")
        seen.add(row.sample_id)
    return rows


def _row(path: Path, line: int, file: str, gloss: str) -> Row:
    where = f"{path}:{line}"
    if gloss not in CLASSES:
        raise SlrbenchError(f"{where}: label '{gloss}'; expected one of the 50 VSL glosses "
                            "(docs/datasets/vsl.md#classes)")
    folder, _, name = file.partition("/")
    match = _NAME.fullmatch(name)
    if folder != gloss or match is None or match["gloss"] != gloss:
        raise SlrbenchError(f"{where}: file '{file}'; expected '{gloss}/<signer>_{gloss}_<k>.npy' "
                            f"for label '{gloss}'")
    return Row(file, CLASSES.index(gloss), match["signer"])


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise SlrbenchError(f"{path}: missing; expected the array the split file lists")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as error:  # pickled objects, truncated, not .npy
        raise SlrbenchError(f"{path}: unreadable as a plain NumPy array ({error}); expected "
                            ".npy without pickled objects") from None


def read_video(path: Path) -> np.ndarray:
    """(24, 224, 224, 3) uint8 frames, converted from upstream's BGR to RGB."""
    array = _load(path)
    if array.shape != VIDEO_SHAPE or array.dtype != np.uint8:
        raise SlrbenchError(f"{path}: video array {array.dtype} {list(array.shape)}; expected "
                            f"uint8 {list(VIDEO_SHAPE)} (docs/formats/vsl-arrays.md#video-arrays)")
    return np.ascontiguousarray(array[..., ::-1])


def read_sensor(path: Path) -> np.ndarray:
    """(steps, 12) float32."""
    array = _load(path)
    if (array.ndim != 2 or array.shape[1] != SENSOR_CHANNELS or array.shape[0] < 1
            or not np.issubdtype(array.dtype, np.number)):
        raise SlrbenchError(f"{path}: sensor array {array.dtype} {list(array.shape)}; expected "
                            f"numbers of shape [steps, {SENSOR_CHANNELS}] "
                            "(docs/formats/vsl-arrays.md#sensor-arrays)")
    return np.asarray(array, dtype=np.float32)


class VSLClips:
    """Frames of one split, read from the video arrays on every call (a split at 224 px would
    need some 20 GB of memory), `frames` of the 24 on the frame cache's grid, resized to
    `size` (bilinear, antialiased). What `frame_cache` gives the video pipelines."""

    def __init__(self, root: Path, ids: tuple[str, ...], size: int, frames: int) -> None:
        if int(size) < 16 or int(frames) < 1:
            raise SlrbenchError(f"VSL frames: size={size}, frames={frames}; expected size >= 16 "
                                "and frames >= 1")
        self.root, self.ids, self.size, self.frames = root, ids, int(size), int(frames)

    def __len__(self) -> int:
        return len(self.ids)

    def clip(self, index: int) -> np.ndarray:
        video = read_video(self.root / self.ids[index])
        picked = video[grid_positions(VIDEO_SHAPE[0], self.frames)]
        if self.size == VIDEO_SHAPE[1]:
            return picked
        images = torch.from_numpy(picked).permute(0, 3, 1, 2).float()
        resized = functional.interpolate(images, size=(self.size, self.size), mode="bilinear",
                                         align_corners=False, antialias=True)
        return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


class VSL:
    """The VSL dataset from a prepared folder (see the module docstring)."""

    def __init__(self, root: Path, video_root: Path | None = None,
                 sensor_root: Path | None = None) -> None:
        self.root = Path(root)
        self.video_root = Path(video_root) if video_root else self.root / "video"
        self.sensor_root = Path(sensor_root) if sensor_root else self.root / "sensor"
        train = read_split_csv(self.root / SPLIT_FILES["train"])
        test = read_split_csv(self.root / SPLIT_FILES["test"])
        overlap = {r.sample_id for r in train} & {r.sample_id for r in test}
        if overlap:
            raise SlrbenchError(f"{self.root}: file '{sorted(overlap)[0]}' is in both train.csv "
                                "and test.csv; expected disjoint splits")
        self._rows = {"train": [r for r in train if r.signer != VAL_SIGNER],
                      "val": [r for r in train if r.signer == VAL_SIGNER], "test": test}
        if not self._rows["val"] or not self._rows["train"]:
            raise SlrbenchError(f"{self.root / SPLIT_FILES['train']}: {len(self._rows['val'])} "
                                f"clips of signer {VAL_SIGNER}; expected the held-out val signer "
                                "and others beside it (docs/datasets/vsl.md#splits)")
        self._sensor: dict[str, SensorArrays] = {}
        self.spec = DatasetSpec(
            name="vsl",
            version="3db51a7",
            title="VSL (Vietnamese SL with wrist IMU)",
            classes=CLASSES,
            splits={s: tuple(r.sample_id for r in rows) for s, rows in self._rows.items()},
            modalities=("rgb", "sensor"),
            layout=None,
            frame_size=None,
            signer_independent=True,
            notes=(f"val = training signer {VAL_SIGNER} (slrbench design); upstream has none.",
                   "Frames converted from BGR to RGB on reading."),
            license="not stated; research use",
            extra={"sensor_channels": list(SENSOR_NAMES), "val_signer": VAL_SIGNER},
        )

    def _split(self, split: str) -> list[Row]:
        if split not in SPLITS:
            raise SlrbenchError(f"VSL: unknown split '{split}'; expected one of "
                                f"{', '.join(SPLITS)}")
        return self._rows[split]

    def labels(self, split: str) -> np.ndarray:
        return np.array([r.label for r in self._split(split)], dtype=np.int64)

    def signers(self, split: str) -> np.ndarray:
        return np.array([r.signer for r in self._split(split)], dtype=str)

    def pose(self, split: str) -> PoseArrays:
        raise SlrbenchError("--dataset vsl: no keypoints are distributed with VSL; expected a "
                            "method that reads RGB frames and sensor data")

    def sensor(self, split: str) -> SensorArrays:
        """Every clip's sensor array, zero-padded to the longest (read once per split)."""
        if split not in self._sensor:
            arrays = [read_sensor(self.sensor_root / r.sample_id) for r in self._split(split)]
            lengths = np.array([len(a) for a in arrays], dtype=np.int64)
            data = np.zeros((len(arrays), int(lengths.max()), SENSOR_CHANNELS), np.float32)
            for i, array in enumerate(arrays):
                data[i, :len(array)] = array
            self._sensor[split] = SensorArrays(
                data=data, lengths=lengths, rate_hz=math.nan,  # not documented upstream
                channels=SENSOR_NAMES)
        return self._sensor[split]

    def frame_cache(self, split: str, size: int = 224, frames: int = 24) -> VSLClips:
        return VSLClips(self.video_root, self.spec.splits[split], size, frames)


def load_vsl(root: Path) -> VSL:
    return VSL(root)
