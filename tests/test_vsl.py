"""The VSL reader (docs/formats/vsl-arrays.md, docs/datasets/vsl.md) on a fixture in the
published shape: split CSVs `,file,label`, uint8 (24, 224, 224, 3) BGR video arrays and
(steps, 12) sensor arrays under two roots; the N12 hold-out, alphabetical labels, BGR to RGB,
the registry hook, self-learning fusion's pipeline on it, and one-line errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from slrbench.datasets.frame_cache import grid_positions
from slrbench.datasets.registry import REGISTRY, load_dataset
from slrbench.datasets.vsl import CLASSES, VIDEO_SHAPE, VSL, load_vsl, read_split_csv
from slrbench.errors import SlrbenchError
from slrbench.methods.slfusion_adapter import UNIT, SLFusionAdapter

# (relative path, gloss) per split: signer N12 of train.csv becomes val.
TRAIN = [("cam_on/N2_cam_on_1.npy", "cam_on"), ("an_mung/N3_an_mung_2.npy", "an_mung"),
         ("cam_on/N12_cam_on_1.npy", "cam_on"), ("yeu/N12_yeu_4.npy", "yeu")]
TEST = [("yeu/N6_yeu_1.npy", "yeu"), ("an_mung/N7_an_mung_3.npy", "an_mung")]
STEPS = {"N2": 180, "N3": 175, "N12": 180, "N6": 300, "N7": 180}


def video_array(seed: int) -> np.ndarray:
    """BGR frames whose blue, green and red planes hold 10, 20 and 30 plus the frame index."""
    frames = np.zeros(VIDEO_SHAPE, np.uint8)
    for t in range(VIDEO_SHAPE[0]):
        frames[t, ..., 0], frames[t, ..., 1], frames[t, ..., 2] = 10 + t, 20 + t, 30 + t + seed
    return frames


def write_csv(path: Path, rows: list[tuple[str, str]], header: bool = True) -> None:
    lines = [",file,label"] if header else []
    lines += [f"{i},{file},{gloss}" for i, (file, gloss) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def vsl_root(tmp_path: Path) -> Path:
    root = tmp_path / "prepared" / "vsl"
    for i, (file, _) in enumerate(TRAIN + TEST):
        signer = Path(file).name.split("_")[0]
        for folder, array in (("video", video_array(i)),
                              ("sensor", np.full((STEPS[signer], 12), i, np.float64))):
            path = root / folder / file
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, array)
    write_csv(root / "train.csv", TRAIN)
    write_csv(root / "test.csv", TEST)
    return root


def test_splits_labels_and_signers(vsl_root: Path) -> None:
    data = load_vsl(vsl_root)
    assert data.spec.classes == CLASSES == tuple(sorted(CLASSES)) and len(CLASSES) == 50
    assert data.spec.splits == {"train": (TRAIN[0][0], TRAIN[1][0]),
                                "val": (TRAIN[2][0], TRAIN[3][0]),
                                "test": (TEST[0][0], TEST[1][0])}
    # alphabetical class index, as upstream's LabelEncoder: an_mung 0, cam_on 11, yeu 49
    assert data.labels("train").tolist() == [11, 0]
    assert data.labels("val").tolist() == [11, 49]
    assert data.signers("test").tolist() == ["N6", "N7"]
    assert data.spec.modalities == ("rgb", "sensor")
    with pytest.raises(SlrbenchError, match="no keypoints are distributed with VSL"):
        data.pose("train")


def test_frames_are_rgb_on_the_cache_grid(vsl_root: Path) -> None:
    clips = load_vsl(vsl_root).frame_cache("train", 224, 16)
    clip = clips.clip(0)
    picked = grid_positions(24, 16)
    assert clip.shape == (16, 224, 224, 3) and clip.dtype == np.uint8
    # red first (BGR -> RGB), frames at the grid positions
    assert clip[:, 0, 0].tolist() == [[30 + t, 20 + t, 10 + t] for t in picked]
    small = load_vsl(vsl_root).frame_cache("test", 64, 8).clip(1)
    assert small.shape == (8, 64, 64, 3)
    assert small[:, 5, 5].tolist() == [[30 + t + 5, 20 + t, 10 + t]
                                       for t in grid_positions(24, 8)]  # constant planes


def test_sensor_arrays_padded_to_the_longest(vsl_root: Path) -> None:
    data = load_vsl(vsl_root)
    train = data.sensor("train")
    assert train.data.shape == (2, 180, 12) and train.data.dtype == np.float32
    assert train.lengths.tolist() == [180, 175]
    assert (train.data[1, :175] == 1).all() and not train.data[1, 175:].any()
    assert len(train.channels) == 12 and data.spec.extra["sensor_channels"] == list(
        train.channels)
    assert data.sensor("test").lengths.tolist() == [300, 180]


def test_registry_reads_the_prepared_copy(vsl_root: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert REGISTRY["vsl"].reader == "vsl:load_vsl"
    monkeypatch.setenv("SLRBENCH_CACHE", str(vsl_root.parents[1]))
    dataset = load_dataset("vsl")
    assert isinstance(dataset, VSL) and dataset.spec.name == "vsl"
    assert dataset.spec.num_classes == REGISTRY["vsl"].num_classes
    monkeypatch.setenv("SLRBENCH_CACHE", str(vsl_root.parents[1] / "elsewhere"))
    with pytest.raises(SlrbenchError, match="--dataset vsl: no prepared local copy"):
        load_dataset("vsl")


def test_self_learning_fusion_reads_it(vsl_root: Path) -> None:
    data = load_vsl(vsl_root)
    adapter = SLFusionAdapter()
    config = adapter.resolve_config("tiny", data.spec, UNIT, {})
    assert config["model"]["sensor"]["channels"] == 12
    streams = adapter.stream_data(data, config, seed=0)  # type: ignore[arg-type]
    streams.train.set_modalities(("rgb", "sensor"))  # type: ignore[attr-defined]
    batch = default_collate([streams.train[i][0] for i in range(2)])
    assert batch["rgb"].shape == (2, 3, 16, 32, 32) and batch["sensor"].shape == (2, 12, 60)
    model = adapter.build_model(config, data.spec.num_classes)
    model.eval()
    with torch.no_grad():
        heads = adapter.predict_heads(model, {"rgb": batch["rgb"]}, config)
    assert all(v.shape == (2, 50) and torch.isfinite(v).all() for v in heads.values())


def test_csv_without_header_is_read(tmp_path: Path) -> None:
    write_csv(tmp_path / "shuf.csv", TEST, header=False)  # upstream's shuffled copies
    assert [r.sample_id for r in read_split_csv(tmp_path / "shuf.csv")] == [f for f, _ in TEST]


@pytest.mark.parametrize(("rows", "message"), [
    ([("cam_on/N2_cam_on_1.npy", "xin_chao")],
     r"bad.csv:2: label 'xin_chao'; expected one of the 50 VSL glosses"),
    ([("yeu/N2_cam_on_1.npy", "cam_on")],
     r"bad.csv:2: file 'yeu/N2_cam_on_1.npy'; expected 'cam_on/<signer>_cam_on_<k>.npy' for "
     "label 'cam_on'"),
    ([("cam_on/N2_cam_on_1.npy", "cam_on")] * 2,
     r"bad.csv: file 'cam_on/N2_cam_on_1.npy' listed twice; expected each clip once"),
    ([], r"bad.csv: found no rows; expected one clip per line"),
])
def test_bad_split_files(tmp_path: Path, rows: list[tuple[str, str]], message: str) -> None:
    write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(SlrbenchError, match=message):
        read_split_csv(tmp_path / "bad.csv")


def test_wrong_column_count(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(",file,label\n0,cam_on/N2_cam_on_1.npy\n")
    with pytest.raises(SlrbenchError, match=r"bad.csv:2: found 2 columns; expected 3"):
        read_split_csv(tmp_path / "bad.csv")


def test_no_val_signer(vsl_root: Path) -> None:
    write_csv(vsl_root / "train.csv", TRAIN[:2])
    with pytest.raises(SlrbenchError, match=r"train.csv: 0 clips of signer N12; expected the "
                                            "held-out val signer"):
        load_vsl(vsl_root)


def test_bad_arrays_are_named(vsl_root: Path) -> None:
    video = vsl_root / "video" / TEST[0][0]
    np.save(video, np.zeros((24, 224, 224, 3), np.float32))
    clips = load_vsl(vsl_root).frame_cache("test", 64, 8)
    with pytest.raises(SlrbenchError, match=r"N6_yeu_1.npy: video array float32 "
                                            r"\[24, 224, 224, 3\]; expected uint8 "
                                            r"\[24, 224, 224, 3\]"):
        clips.clip(0)
    np.save(video, np.zeros((16, 224, 224, 3), np.uint8))
    with pytest.raises(SlrbenchError, match=r"video array uint8 \[16, 224, 224, 3\]"):
        clips.clip(0)
    # a pickled object is refused, never unpickled
    video.write_bytes(b"\x93NUMPY" + pickle.dumps(object()))
    with pytest.raises(SlrbenchError, match="unreadable as a plain NumPy array"):
        clips.clip(0)
    np.save(video, np.array([{"a": 1}], dtype=object))
    with pytest.raises(SlrbenchError, match="unreadable as a plain NumPy array"):
        clips.clip(0)
    np.save(vsl_root / "sensor" / TEST[1][0], np.zeros((180, 6), np.float32))
    with pytest.raises(SlrbenchError, match=r"N7_an_mung_3.npy: sensor array float32 "
                                            r"\[180, 6\]; expected numbers of shape "
                                            r"\[steps, 12\]"):
        load_vsl(vsl_root).sensor("test")
    (vsl_root / "sensor" / TEST[1][0]).unlink()
    with pytest.raises(SlrbenchError, match=r"N7_an_mung_3\.npy: missing; expected the array"):
        load_vsl(vsl_root).sensor("test")
