"""SynthSign: configuration, determinism, cache, splits, classes, glosses, pose artefacts."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from slrbench.datasets.base import DatasetSpec, PoseArrays, SensorArrays
from slrbench.datasets.synthsign import (
    PRESETS,
    SynthSign,
    SynthSignConfig,
    load_synthsign,
)
from slrbench.datasets.synthsign import config as config_mod
from slrbench.datasets.synthsign import dataset as dataset_mod
from slrbench.datasets.synthsign.phonology import (
    PAIR_KINDS,
    differing_parameters,
    gloss_clusters,
)
from slrbench.errors import SlrbenchError

# A few seconds' worth of data for the tests that generate repeatedly.
SMALL = {"n_classes": 8, "n_train_signers": 3, "n_val_signers": 1, "n_test_signers": 2,
         "repetitions": 1}


@pytest.fixture(scope="session")
def tiny() -> SynthSign:
    return load_synthsign("tiny", seed=0)  # the session cache of tests/conftest.py


# --- configuration ---------------------------------------------------------------------------


def test_preset_values_and_overrides() -> None:
    cfg = SynthSignConfig.preset("tiny", seed=3, hand_jitter_px=7.0)
    assert cfg.preset_name == "tiny" and cfg.seed == 3 and cfg.hand_jitter_px == 7.0
    assert set(PRESETS) >= {"tiny", "default"}
    d = SynthSignConfig.preset("default")
    assert d.n_classes >= 60 and d.n_signers == 24
    with pytest.raises(SlrbenchError, match="unknown field"):
        SynthSignConfig.preset("tiny", no_such_knob=1)
    with pytest.raises(SlrbenchError, match="preset"):
        SynthSignConfig.preset("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 4  # type: ignore[misc]


def test_hash_covers_every_parameter_and_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = SynthSignConfig.preset("tiny")
    base = cfg.sha256()
    assert base == SynthSignConfig.preset("tiny").sha256()
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, bool):
            new = not v
        elif isinstance(v, int):
            new = v + 1
        elif isinstance(v, float):
            new = v * 0.7 + 0.011  # stays inside every valid range, never equals v here
        elif isinstance(v, tuple):
            new = tuple(x + 1 for x in v)
        else:
            new = str(v) + "x"
        assert dataclasses.replace(cfg, **{f.name: new}).sha256() != base, f.name
    monkeypatch.setattr(config_mod, "GENERATOR_VERSION", "999")
    assert cfg.sha256() != base


# --- determinism and cache -------------------------------------------------------------------


def test_same_seed_identical_different_seed_differs(tmp_path: Path) -> None:
    a = load_synthsign("tiny", seed=5, cache_dir=tmp_path / "a", **SMALL)
    b = load_synthsign("tiny", seed=5, cache_dir=tmp_path / "b", **SMALL)
    c = load_synthsign("tiny", seed=6, cache_dir=tmp_path / "c", **SMALL)
    assert a.generated and b.generated
    for split in ("train", "val", "test"):
        assert a.spec.splits[split] == b.spec.splits[split]
        np.testing.assert_array_equal(a.pose(split).data, b.pose(split).data)
        np.testing.assert_array_equal(a.sensor(split).data, b.sensor(split).data)
        np.testing.assert_array_equal(a.labels(split), b.labels(split))
    assert [x.gloss for x in a.classes] == [x.gloss for x in b.classes]
    assert not np.array_equal(a.pose("train").data, c.pose("train").data)
    assert [x.gloss for x in a.classes] != [x.gloss for x in c.classes]


def test_cache_hit_does_not_regenerate(tmp_path: Path) -> None:
    a = load_synthsign("tiny", seed=1, cache_dir=tmp_path, **SMALL)
    files = sorted(a.cache_path.glob("*.npz")) + [a.cache_path / "meta.json"]
    mtimes = [p.stat().st_mtime_ns for p in files]
    count = dataset_mod.GENERATION_COUNT
    b = load_synthsign("tiny", seed=1, cache_dir=tmp_path, **SMALL)
    assert not b.generated and count == dataset_mod.GENERATION_COUNT
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    np.testing.assert_array_equal(a.pose("test").data, b.pose("test").data)
    np.testing.assert_array_equal(a.sensor("test").lengths, b.sensor("test").lengths)
    # Any parameter change is a different cache directory, generated afresh.
    c = load_synthsign("tiny", seed=1, cache_dir=tmp_path, hand_jitter_px=4.5, **SMALL)
    assert c.cache_path != a.cache_path and c.generated
    assert a.cache_path.name == a.config_sha256[:len(a.cache_path.name)]


def test_default_cache_dir_follows_slrbench_paths(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLRBENCH_CACHE", str(tmp_path))
    ds = SynthSign(SynthSignConfig.preset("tiny", **SMALL))
    assert ds.cache_path.parent == tmp_path / "synthsign"
    assert ds.spec.extra["cache_dir"] == str(ds.cache_path)


def test_corrupt_cache_is_regenerated_with_a_warning(tmp_path: Path) -> None:
    a = load_synthsign("tiny", seed=2, cache_dir=tmp_path, **SMALL)
    ref = a.pose("val").data.copy()
    (a.cache_path / "val.npz").write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        b = load_synthsign("tiny", seed=2, cache_dir=tmp_path, **SMALL)
    assert b.generated
    np.testing.assert_array_equal(b.pose("val").data, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = load_synthsign("tiny", seed=2, cache_dir=tmp_path, **SMALL)  # repaired: no warning
    assert not c.generated


def test_interrupted_write_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    def boom(fh, **arrays):
        fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset_mod.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        load_synthsign("tiny", seed=3, cache_dir=tmp_path, **SMALL)
    monkeypatch.undo()
    folder = next(tmp_path.iterdir())
    leftovers = [p.name for p in folder.iterdir() if p.name != ".lock"]
    assert leftovers == []  # neither a half-written file nor meta.json
    ds = load_synthsign("tiny", seed=3, cache_dir=tmp_path, **SMALL)
    assert ds.generated and (ds.cache_path / "meta.json").exists()


# --- spec, splits, classes -------------------------------------------------------------------


def test_tiny_spec_and_split_sizes(tiny: SynthSign) -> None:
    spec = tiny.spec
    assert isinstance(spec, DatasetSpec)
    assert spec.name == f"synthsign-{tiny.config.sha256()[:8]}"
    assert spec.version == config_mod.GENERATOR_VERSION
    assert spec.modalities == ("pose", "rgb", "sensor")
    assert spec.layout == "coco_wholebody_133" and spec.frame_size == (256, 256)
    assert spec.fps == 25.0 and spec.signer_independent is True
    assert {k: len(v) for k, v in spec.splits.items()} == {"train": 540, "val": 180,
                                                           "test": 180}
    assert spec.num_classes == 20 == len(tiny.classes)
    for key in ("preset", "seed", "config_sha256", "cache_dir"):
        assert key in spec.extra
    assert spec.extra["config_sha256"] == tiny.config.sha256()
    all_ids = [i for v in spec.splits.values() for i in v]
    assert len(set(all_ids)) == len(all_ids)
    assert all(re.fullmatch(r"sg\d{2}_\d{5}", i) for i in all_ids)
    for split in ("train", "val", "test"):
        ids = spec.splits[split]
        assert list(ids) == sorted(ids)
        sg = tiny.signers(split)
        assert [i.split("_")[0] for i in ids] == list(sg)
        lab = tiny.labels(split)
        assert lab.dtype == np.int64 and lab.shape == (len(ids),)
        # Every signer performs every class `repetitions` times.
        assert np.all(np.bincount(lab, minlength=20) == len(set(sg)) * 3)
    sets = [set(tiny.signers(s)) for s in ("train", "val", "test")]
    assert [len(s) for s in sets] == [9, 3, 3]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    with pytest.raises(SlrbenchError, match="unknown split"):
        tiny.labels("dev")


def test_default_preset_counts_without_generating(tmp_path: Path) -> None:
    ds = SynthSign(SynthSignConfig.preset("default", seed=0), cache_dir=tmp_path)
    assert ds.num_classes == 64 and len(set(ds.spec.classes)) == 64
    assert {k: len(v) for k, v in ds.spec.splits.items()} == {"train": 2048, "val": 384,
                                                              "test": 640}
    assert not any(tmp_path.iterdir())  # nothing generated until arrays are asked for


def test_minimal_pairs_differ_in_exactly_one_parameter(tiny: SynthSign) -> None:
    kinds = {k for *_, k in tiny.minimal_pairs}
    assert kinds == set(PAIR_KINDS)
    for a, b, kind in tiny.minimal_pairs:
        assert differing_parameters(tiny.classes[a], tiny.classes[b]) == [kind]
    # ... and every such pair is recorded; no two classes are the same sign.
    recorded = {(a, b) for a, b, _ in tiny.minimal_pairs}
    for i, ci in enumerate(tiny.classes):
        assert ci.index == i
        for cj in tiny.classes[i + 1:]:
            diff = differing_parameters(ci, cj)
            assert diff, (ci, cj)
            assert (len(diff) == 1) == ((ci.index, cj.index) in recorded)
    hs = [(a, b) for a, b, k in tiny.minimal_pairs if k == "handshape"]
    assert all(tiny.classes[a].handshape_dominant != tiny.classes[b].handshape_dominant
               for a, b in hs)
    for c in tiny.classes:
        assert (c.hands == 1) == (c.handshape_nondominant is None) == (c.symmetry == "none")
        assert 1 <= c.repetitions <= 3


def test_glosses_are_unique_wlasl_v03_glosses(tiny: SynthSign, shared_dir: Path) -> None:
    wlasl = {}
    for line in (shared_dir / "data/wlasl/wlasl_class_list.txt").read_text().splitlines():
        idx, gloss = line.split("\t")
        wlasl[gloss] = int(idx)
    assert wlasl.get("losear") == 163
    wlasl["lose"] = wlasl.pop("losear")  # v0.3 spelling (docs/datasets/wlasl.md#classes)
    clusters = gloss_clusters()
    glosses = [g for gs in clusters.values() for g in gs]
    assert len(clusters) >= 25 and len(glosses) >= 100
    assert len(glosses) == len(set(glosses))
    assert set(glosses) <= set(wlasl), sorted(set(glosses) - set(wlasl))
    assert "losear" not in glosses
    doc = json.loads((Path(config_mod.__file__).parent / "glosses.json").read_text())
    assert "WLASL" in doc["attribution"] and "C-UDA" in doc["attribution"]
    assert len(set(tiny.spec.classes)) == len(tiny.spec.classes)
    for c in tiny.classes:
        assert c.gloss in clusters[c.cluster]
    big = SynthSign(SynthSignConfig.preset("tiny", n_classes=100))
    assert len(set(big.spec.classes)) == 100


def test_semantic_rate_controls_family_clusters() -> None:
    def families(rate: float) -> list[set[str]]:
        ds = SynthSign(SynthSignConfig.preset("default", semantic_rate=rate))
        fam: dict[int, set[str]] = {}
        count: dict[int, int] = {}
        for c in ds.classes:
            fam.setdefault(c.family, set()).add(c.cluster)
            count[c.family] = count.get(c.family, 0) + 1
        return [fam[f] if count[f] > 1 else {"-"} for f in fam if count[f] > 1]

    assert all(len(f) == 1 for f in families(1.0))
    assert all(len(f) > 1 for f in families(0.0))


# --- arrays ----------------------------------------------------------------------------------


def test_pose_arrays_and_detector_artefacts(tiny: SynthSign) -> None:
    pose = tiny.pose("train")
    assert isinstance(pose, PoseArrays)
    d, n = pose.data, pose.lengths
    assert d.dtype == np.float32 and d.shape[0] == 540 and d.shape[2:] == (133, 3)
    assert pose.layout == "coco_wholebody_133" and pose.frame_size == (256, 256)
    assert n.dtype == np.int64 and n.min() >= 24 and n.max() <= 56 and d.shape[1] >= n.max()
    assert len(np.unique(n)) > 10  # lengths vary with speed and repetitions
    t = np.arange(d.shape[1])
    pad = t[None] >= n[:, None]
    assert not d[pad].any()  # zero padding
    valid = ~pad
    xy, sc = d[..., :2], d[..., 2]
    assert np.all((xy[valid] >= 0) & (xy[valid] <= 255))
    assert np.all((sc[valid] >= 0) & (sc[valid] <= 1))
    for base in (91, 112):
        lost = (sc[..., base] == 0) & valid
        assert lost.any() and (lost.sum() < valid.sum())
        assert not xy[lost][:, base:base + 21].any()  # undetected = zeros
        assert np.all(sc[lost][:, base:base + 21] == 0)
    upper, lower = sc[..., 0:11][valid], sc[..., 11:23][valid]
    assert upper.mean() > 0.8 and lower.mean() < 0.4
    # Lower body jitters far more than the shoulders (frame-to-frame x motion; y is often
    # clipped at the bottom border).
    dx = np.abs(np.diff(xy[..., 0], axis=1))[valid[:, 1:] & valid[:, :-1]]
    assert dx[:, 13:17].mean() > 3 * dx[:, 5:7].mean()


def test_sensor_arrays(tiny: SynthSign) -> None:
    s = tiny.sensor("test")
    assert isinstance(s, SensorArrays)
    assert s.data.dtype == np.float32 and s.data.shape[0] == 180 and s.data.shape[2] == 12
    assert s.rate_hz == 100.0 and len(s.channels) == 12 == len(set(s.channels))
    assert s.channels[0] == "left_acc_x" and s.channels[-1] == "right_gyro_z"
    np.testing.assert_array_equal(s.lengths, tiny.pose("test").lengths * 4)
    acc = s.data[:, 0, 0:3]
    assert np.allclose(np.linalg.norm(acc, axis=1), 9.81, atol=0.6)  # at rest, with noise


def test_left_dominant_signers_use_the_left_hand(tiny: SynthSign) -> None:
    pose = tiny.pose("train")
    labels = tiny.labels("train")
    signers = {s.id: s for s in tiny.signer_list}
    lefties = {s.id for s in tiny.signer_list if s.left_handed}
    assert lefties & set(tiny.signers("train")) and lefties & set(tiny.signers("test"))
    one_handed = np.array([tiny.classes[k].hands == 1 for k in labels])
    travel = []
    for i, sg in enumerate(tiny.signers("train")):
        if not one_handed[i]:
            continue
        w = pose.data[i, :pose.lengths[i], [9, 10], :2]  # (2, T, 2) left, right wrist
        span = np.ptp(w, axis=1).sum(-1)
        travel.append((signers[sg].left_handed, span[0] > span[1]))
    travel_arr = np.array(travel)
    assert travel_arr.size
    # The dominant (moving) wrist is the left one exactly for left-dominant signers.
    assert np.mean(travel_arr[:, 0] == travel_arr[:, 1]) > 0.95


def test_describe_mentions_counts_and_classes(tiny: SynthSign) -> None:
    text = tiny.describe()
    for needle in ("tiny", "seed=0", "train 540", "val 180", "test 180", "minimal pairs",
                   "handshape", str(tiny.cache_path), "25 fps", "100 Hz", "256x256"):
        assert needle in text, needle
    assert all(c.gloss[:14] in text for c in tiny.classes)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_val_stands_for_test_in_every_preset(preset: str, seed: int) -> None:
    # Val chooses checkpoints, fusion weights and stream subsets: it needs several signers and
    # a left-dominant one, as test has (otherwise what val picks does not transfer).
    from slrbench.datasets.synthsign.body import sample_signers

    cfg = SynthSignConfig.preset(preset, seed=seed)
    signers = sample_signers(cfg, np.random.default_rng(cfg.seed))
    for split in ("val", "test"):
        members = [s for s in signers if s.split == split]
        assert len(members) >= 3, (split, len(members))
        assert any(s.left_handed for s in members), split
