"""Run records: exact round trip, atomic writing, validation errors, id alignment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from slrbench.errors import SlrbenchError
from slrbench.store import atomic, records
from slrbench.store.provenance import sha256_ids, utc_now
from slrbench.store.records import (
    RECORD_VERSION,
    REQUIRED_FIELDS,
    RunRecord,
    derived_meta,
    meta_template,
    new_run_id,
    read_record,
    validate_record,
    write_record,
)

K = 7


def make_record(ids=None, k: int = K, seed: int = 0, score_kind: str = "logits",
                extras: dict | None = None, **meta_fields) -> RunRecord:
    ids = list(ids) if ids is not None else ["00412", "00001", "a/b#1", "Ü-7", "10"]
    rng = np.random.default_rng(seed)
    labels = (np.arange(len(ids)) * 3) % k
    if score_kind == "pred_top1":
        scores = rng.integers(0, k, len(ids))
    else:
        scores = rng.standard_normal((len(ids), k)).astype(np.float32)
    identity = {"method": "slgcn", "dataset": "synthsign", "stream": "j", "seed": seed}
    meta = meta_template(
        run_id=new_run_id(identity), method="slgcn", dataset="synthsign", split="test",
        stream="j", seed=seed, num_classes=k, score_kind=score_kind, n_official=len(ids) + 2,
        missing_ids=["x1", "x2"], decisions=["slgcn.bone=correct"], config={"lr": 0.1},
        env={"python": "3"}, started_at=utc_now(), finished_at=utc_now(), wall_time_s=1.5,
        metrics={"pi@1": {"value": 0.4, "ci_low": 0.2, "ci_high": 0.6}},
        **derived_meta(ids, labels),
    )
    meta.update(meta_fields)
    return RunRecord(meta, ids, labels, scores, extras or {})


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------------------ round trip


def test_round_trip_is_exact(tmp_path: Path) -> None:
    rec = make_record(extras={"features": np.linspace(0, 1, 15, dtype=np.float32).reshape(5, 3),
                              "per_class_n": np.arange(K, dtype=np.int64)})
    # float32 edge values survive bit for bit
    rec.scores[0, :4] = [np.float32(1e-45), -0.0, np.finfo(np.float32).max, 1 / 3]
    log = tmp_path / "train.log.jsonl"
    log.write_text('{"epoch": 1}\n')
    path = write_record(tmp_path / "store", rec, side_files={"log.jsonl": log})

    assert path == tmp_path / "store" / "runs" / rec.run_id
    assert sorted(p.name for p in path.iterdir()) == ["log.jsonl", "outputs.npz", "run.json"]
    assert (path / "log.jsonl").read_text() == '{"epoch": 1}\n'
    back = read_record(path)
    assert back.meta == rec.meta
    assert back.sample_ids.tolist() == ["00412", "00001", "a/b#1", "Ü-7", "10"]
    assert back.sample_ids.dtype.kind == "U"
    for name in ("sample_ids", "labels", "scores"):
        assert same_bits(getattr(back, name), getattr(rec, name)), name
    assert back.labels.dtype == np.int64 and back.scores.dtype == np.float32
    assert set(back.extras) == {"features", "per_class_n"}
    assert all(same_bits(back.extras[k], rec.extras[k]) for k in rec.extras)
    # the npz itself holds the documented keys and no pickles
    with np.load(path / "outputs.npz", allow_pickle=False) as z:
        assert set(z.files) == {"sample_ids", "labels", "logits", "features", "per_class_n"}
    # read_record accepts the run.json path too
    assert read_record(path / "run.json").run_id == rec.run_id


@pytest.mark.parametrize("kind,key", [("probs", "scores"), ("log_probs", "scores"),
                                      ("pred_top1", "pred_top1")])
def test_score_kinds_use_their_array_name(tmp_path: Path, kind: str, key: str) -> None:
    rec = make_record(score_kind=kind)
    path = write_record(tmp_path, rec)
    with np.load(path / "outputs.npz") as z:
        assert key in z.files and "logits" not in z.files
    back = read_record(path)
    assert back.score_kind == kind and same_bits(back.scores, rec.scores)


def test_properties() -> None:
    rec = make_record()
    assert (rec.method, rec.dataset, rec.split, rec.stream, rec.seed) == (
        "slgcn", "synthsign", "test", "j", 0)
    assert rec.num_classes == K and rec.n == 5 and rec.score_kind == "logits"
    assert rec.metrics["pi@1"]["value"] == 0.4
    assert rec.run_id.startswith("slgcn-synthsign-j-s0-")


def test_construction_coerces_and_refuses_numeric_ids() -> None:
    rec = make_record()
    rec2 = RunRecord(rec.meta, rec.sample_ids.tolist(), rec.labels.astype(np.int32),
                     rec.scores.astype(np.float64))
    assert rec2.labels.dtype == np.int64 and rec2.scores.dtype == np.float32
    with pytest.raises(SlrbenchError, match="expected strings"):
        RunRecord(rec.meta, np.arange(5), rec.labels, rec.scores)
    with pytest.raises(SlrbenchError, match=r"labels.*expected integers"):
        RunRecord(rec.meta, rec.sample_ids, rec.labels.astype(float), rec.scores)


def test_new_run_id_shape_and_uniqueness() -> None:
    identity = {"method": "SL-GCN", "dataset": "synthsign", "stream": "left.j", "seed": 3,
                "config_sha256": "ab" * 32, "split_sha256": "cd" * 32}
    ids = {new_run_id(identity) for _ in range(200)}
    assert len(ids) == 200
    one = next(iter(ids))
    assert re.fullmatch(r"sl_gcn-synthsign-left\.j-s3-[0-9a-f]{8}-[0-9a-f]{6}", one), one
    assert len({i.rsplit("-", 1)[0] for i in ids}) == 1  # same identity, same prefix
    assert new_run_id({**identity, "seed": 4}).split("-")[4] != one.split("-")[4]


def test_meta_template_has_every_required_field() -> None:
    meta = meta_template(method="m")
    assert set(REQUIRED_FIELDS) <= set(meta) and meta["record_version"] == RECORD_VERSION
    assert records.CHANGELOG and records.CHANGELOG[-1].startswith(f"{RECORD_VERSION}:")


# ------------------------------------------------------------------------------- atomicity


def test_atomic_directory_removes_temp_on_error(tmp_path: Path) -> None:
    final = tmp_path / "runs" / "r1"
    with pytest.raises(RuntimeError), atomic.atomic_directory(final) as tmp:
        (tmp / "run.json").write_text("{}")
        assert tmp.parent == final.parent and tmp.name.startswith(".tmp-")
        raise RuntimeError("crash mid-write")
    assert not final.exists()
    assert list((tmp_path / "runs").iterdir()) == []


def test_atomic_directory_refuses_existing(tmp_path: Path) -> None:
    with atomic.atomic_directory(tmp_path / "d") as tmp:
        (tmp / "f").write_text("1")
    assert (tmp_path / "d" / "f").read_text() == "1"
    with pytest.raises(SlrbenchError, match="already exists"), \
            atomic.atomic_directory(tmp_path / "d"):
        pass
    # someone else creates the final name while we write: refused at commit, temp removed
    with pytest.raises(SlrbenchError, match="already exists"), \
            atomic.atomic_directory(tmp_path / "e") as tmp:
        (tmp_path / "e").mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "e"]


def test_write_record_crash_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    rec = make_record()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(records.shutil, "copyfile", boom)
    side = tmp_path / "fig.png"
    side.write_bytes(b"png")
    with pytest.raises(OSError, match="disk full"):
        write_record(tmp_path / "store", rec, side_files={"fig.png": side})
    assert list((tmp_path / "store" / "runs").iterdir()) == []


def test_invalid_record_is_never_written(tmp_path: Path) -> None:
    rec = make_record()
    rec.scores[1, 2] = np.nan
    with pytest.raises(SlrbenchError, match="non-finite"):
        write_record(tmp_path, rec)
    assert not (tmp_path / "runs" / rec.run_id).exists()
    # A NaN metric is damage, not data: refused before anything is written, naming the metric
    rec = make_record(metrics={"pi@1": {"value": float("nan")}})
    with pytest.raises(SlrbenchError, match=r"metric 'pi@1' value is nan; expected a finite"):
        write_record(tmp_path, rec)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_side_file_names_checked(tmp_path: Path) -> None:
    side = tmp_path / "x.txt"
    side.write_text("x")
    for bad in ("run.json", "../x", ".hidden", "a/b"):
        with pytest.raises(SlrbenchError, match="side file name"):
            write_record(tmp_path / "s", make_record(), side_files={bad: side})
    with pytest.raises(SlrbenchError, match="not found"):
        write_record(tmp_path / "s", make_record(), side_files={"log.jsonl": tmp_path / "nope"})


def test_atomic_file_helpers(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "sub" / "a.json"
    atomic.atomic_write_json(p, {"b": (1, 2), "p": Path("x/y"), "n": np.int64(3)})
    assert json.loads(p.read_text()) == {"b": [1, 2], "p": "x/y", "n": 3}
    atomic.atomic_write_text(tmp_path / "t.txt", "héllo")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo"
    atomic.atomic_save_npz(tmp_path / "o.npz", a=np.arange(3), s=np.array(["001"]))
    with np.load(tmp_path / "o.npz", allow_pickle=False) as z:
        assert z["s"].tolist() == ["001"] and z["a"].tolist() == [0, 1, 2]
    with pytest.raises(SlrbenchError, match="dtype object"):
        atomic.atomic_save_npz(tmp_path / "bad.npz", a=np.array([{}, 1], dtype=object))
    with pytest.raises(SlrbenchError, match=r"a\.json.*non-finite"):
        atomic.atomic_write_json(p, {"x": float("inf")})

    # a failed replace keeps the old content and leaves no temp file behind
    def fail(*args):
        raise OSError("crash before rename")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError):
        atomic.atomic_write_text(tmp_path / "t.txt", "new")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo"
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".tmp-")]


# ---------------------------------------------------------------------- corrupt records


def _written(tmp_path: Path) -> tuple[RunRecord, Path]:
    rec = make_record()
    return rec, write_record(tmp_path, rec)


def _edit_json(path: Path, **changes) -> None:
    meta = json.loads((path / "run.json").read_text())
    meta.update(changes)
    for key, value in list(changes.items()):
        if value is _DROP:
            del meta[key]
    (path / "run.json").write_text(json.dumps(meta))


_DROP = object()


def _rewrite_npz(path: Path, **changes) -> None:
    with np.load(path / "outputs.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    np.savez(path / "outputs.npz", **arrays)


CORRUPTIONS = {
    "truncated npz": (lambda p: (p / "outputs.npz").write_bytes(
        (p / "outputs.npz").read_bytes()[:200]), "outputs.npz", "unreadable npz"),
    "missing npz": (lambda p: (p / "outputs.npz").unlink(), "outputs.npz", "missing"),
    "bad json": (lambda p: (p / "run.json").write_text('{"run_id": "x",'), "run.json",
                 "invalid JSON"),
    "json list": (lambda p: (p / "run.json").write_text("[]"), "run.json",
                  "expected a JSON object"),
    "missing run.json": (lambda p: (p / "run.json").unlink(), "run.json", "missing"),
    "missing field": (lambda p: _edit_json(p, split_sha256=_DROP, seed=_DROP), "run.json",
                      "missing: seed, split_sha256"),
    "wrong field kind": (lambda p: _edit_json(p, seed="0"), "run.json", "field 'seed' is str"),
    "newer version": (lambda p: _edit_json(p, record_version=RECORD_VERSION + 1), "run.json",
                      "newer slrbench"),
    "bad score_kind": (lambda p: _edit_json(p, score_kind="softmax"), "run.json", "score_kind"),
    "duplicate ids": (lambda p: _rewrite_npz(p, sample_ids=np.array(
        ["00412", "00001", "00412", "Ü-7", "10"])), "outputs.npz", "duplicate id.*'00412'"),
    "nan score": (lambda p: _rewrite_npz(p, logits=np.where(
        np.eye(5, K, dtype=bool), np.float32("nan"), np.zeros((5, K), np.float32))),
        "outputs.npz", "non-finite values in 5 row"),
    "wrong width": (lambda p: _rewrite_npz(p, logits=np.zeros((5, K + 1), np.float32)),
                    "outputs.npz", f"width {K + 1}; expected num_classes = {K}"),
    "float64 scores": (lambda p: _rewrite_npz(p, logits=np.zeros((5, K))), "outputs.npz",
                       "'logits' has dtype float64; expected float32"),
    "int32 labels": (lambda p: _rewrite_npz(p, labels=np.zeros(5, np.int32)), "outputs.npz",
                     "'labels' has dtype int32; expected int64"),
    "missing labels": (lambda p: _rewrite_npz(p, labels=None), "outputs.npz", "'labels' missing"),
    "short labels": (lambda p: _rewrite_npz(p, labels=np.zeros(4, np.int64)), "outputs.npz",
                     r"labels is int64 \(4,\)"),
    "label out of range": (lambda p: _rewrite_npz(p, labels=np.array([0, 3, 6, 7, -1])),
                           "outputs.npz", r"2 label\(s\) outside \[0, 7\)"),
    "ids_sha256 mismatch": (lambda p: _edit_json(p, ids_sha256=sha256_ids(["x"])), "outputs.npz",
                            "ids_sha256"),
    "reordered ids": (lambda p: _rewrite_npz(p, sample_ids=np.array(
        ["00001", "00412", "a/b#1", "Ü-7", "10"])), "outputs.npz", "ids_sha256"),
    "n_eval": (lambda p: _edit_json(p, n_eval=6), "outputs.npz", "n_eval is 6; expected 5"),
    "classes_present": (lambda p: _edit_json(p, classes_present=1), "outputs.npz",
                        "classes_present is 1"),
    "object array": (lambda p: _rewrite_npz(p, features=np.array([None] * 5, dtype=object)),
                     "outputs.npz", "allow_pickle"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_record_names_the_file(tmp_path: Path, case: str) -> None:
    corrupt, file_name, pattern = CORRUPTIONS[case]
    _rec, path = _written(tmp_path)
    corrupt(path)
    with pytest.raises(SlrbenchError) as err:
        read_record(path)
    message = str(err.value)
    assert str(path / file_name) in message, message
    assert re.search(pattern, message), message
    assert "\n" not in message


def test_validate_record_in_memory_names_source() -> None:
    rec = make_record()
    validate_record(rec, "x.pkl")
    rec.meta["fusion"] = {"strategy": "mean", "inputs": ["run-a"]}
    with pytest.raises(SlrbenchError, match=r"^x\.pkl: fusion\.inputs"):
        validate_record(rec, "x.pkl")
    rec.meta["fusion"] = {"strategy": "mean", "inputs": [{"run_id": "a", "ids_sha256": "0"}]}
    validate_record(rec, "x.pkl")
    bad = make_record(n_official=3)
    with pytest.raises(SlrbenchError, match="exceeds n_official"):
        validate_record(bad, "y")
    spaced = make_record(ids=["a ", "b", "c", "d", "e"])
    with pytest.raises(SlrbenchError, match="surrounding spaces"):
        validate_record(spaced, "z")
    bad_extra = make_record(extras={"features": np.zeros((4, 2))})
    with pytest.raises(SlrbenchError, match=r"extra 'features'.*expected 5 rows"):
        validate_record(bad_extra, "z")


# ---------------------------------------------------------------------------- alignment


def test_aligned_to_reorders_by_id(tmp_path: Path) -> None:
    rec = make_record(extras={"features": np.arange(10, dtype=np.float32).reshape(5, 2),
                              "per_class_n": np.arange(K)})
    target = ["10", "Ü-7", "00412", "a/b#1", "00001"]
    out = rec.aligned_to(target)
    assert out.sample_ids.tolist() == target
    for i, sid in enumerate(target):
        j = rec.sample_ids.tolist().index(sid)
        assert out.labels[i] == rec.labels[j]
        assert same_bits(out.scores[i], rec.scores[j])
        assert same_bits(out.extras["features"][i], rec.extras["features"][j])
    assert same_bits(out.extras["per_class_n"], rec.extras["per_class_n"])
    assert out.meta["ids_sha256"] == sha256_ids(target) != rec.meta["ids_sha256"]
    validate_record(out, "aligned")
    assert rec.sample_ids[0] == "00412"  # the original is untouched
    assert read_record(write_record(tmp_path, out)).sample_ids.tolist() == target


def test_aligned_to_mismatch_names_ids() -> None:
    rec = make_record()
    with pytest.raises(SlrbenchError) as err:
        rec.aligned_to(["00412", "00001", "a/b#1", "Ü-7", "0412"])
    msg = str(err.value)
    assert "record 5 ids, target 5 ids" in msg
    assert "missing from the record ['0412']" in msg and "not in the target ['10']" in msg
    many = [f"id{i:03d}" for i in range(25)]
    with pytest.raises(SlrbenchError, match=r"25 target id\(s\) missing.*\+15 more"):
        rec.aligned_to(many)
    with pytest.raises(SlrbenchError, match="duplicate"):
        rec.aligned_to(["00412", "00412", "a/b#1", "Ü-7", "10"])
