"""`slrbench import`: files in each upstream shape become records aligned by id, exactly; bad
files (code-executing pickles, duplicated, unknown or foreign ids, other class orders,
positional files out of order) are refused in one line with the store unchanged."""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from cli_errors import one_line

from slrbench.datasets.official import official_split
from slrbench.importers import canonical_id, load_pickle
from slrbench.store import RecordStore

DATASET = "synthsign-tiny"
K = 20


def _scores(split: str, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Official ids and labels of a SynthSign-tiny split with logits about 60 % right."""
    table = official_split(DATASET, split)
    assert table is not None
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(table.ids), K)).astype(np.float32)
    hit = rng.random(len(table.ids)) < 0.6
    logits[hit, table.labels[hit]] += 3.0
    return list(table.ids), logits, table.labels.copy()


def _dump(path: Path, obj: object) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def _import(cli, results: Path, path: Path, *options: str, split: str = "test",
            stream: str = "j") -> tuple[int, str, str]:
    return cli("import", str(path), "--dataset", DATASET, "--split", split, "--method", "ext",
               "--stream", stream, "--bootstrap", "0", "--results", str(results), *options)


def _stored(results: Path, split: str = "test", stream: str = "j"):
    store = RecordStore(results)
    return store.load_checked(store.latest(split=split, stream=stream)["run_id"])


# ------------------------------------------------------------------------------- formats


def test_samslr_keys_with_suffixes_and_a_shuffled_label_file_round_trip_exactly(
        cli, tmp_path: Path) -> None:
    ids, logits, labels = _scores("test")
    order = np.random.default_rng(1).permutation(len(ids))
    scores = _dump(tmp_path / "j.pkl", {f"{ids[i]}_color.mp4": logits[i] for i in order})
    names = [f"{ids[i]}_color.mp4" for i in order[::-1]]  # another order than the scores
    label_file = _dump(tmp_path / "labels.pkl", (names, [int(labels[i]) for i in order[::-1]]))
    code, out, err = _import(cli, tmp_path / "r", scores, "--format", "samslr", "--labels",
                             str(label_file), "--selection-split", "val")
    assert code == 0, err
    record = _stored(tmp_path / "r")
    assert record.sample_ids.tolist() == ids  # registry order
    np.testing.assert_array_equal(record.scores, logits)  # bit-exact round trip
    np.testing.assert_array_equal(record.labels, labels)
    expected = float((logits.argmax(1) == labels).mean())
    assert record.metrics["pi@1"]["value"] == pytest.approx(expected, abs=1e-12)
    meta = record.meta
    assert meta["n_eval"] == meta["n_official"] == len(ids) and meta["missing_ids"] == []
    assert meta["selection_split"] == "val" and not meta["test_tuned"]
    provenance = meta["imported"]
    assert provenance["format"] == "samslr" and provenance["selection_split"] == "val"
    assert provenance["files"]["scores"]["sha256"] == hashlib.sha256(
        scores.read_bytes()).hexdigest()
    assert provenance["command"].startswith("slrbench import ")
    assert f"{100 * expected:.2f} %" in out


def test_pyskl_positional_dump_is_aligned_through_the_annotation_order(cli,
                                                                         tmp_path: Path) -> None:
    ids, logits, labels = _scores("test")
    order = np.random.default_rng(2).permutation(len(ids))  # annotation order != registry order
    annotation = {"split": {"xsub_test": [ids[i] for i in order], "xsub_train": ["x"]},
                  "annotations": [{"frame_dir": "x", "label": 0}]
                  + [{"frame_dir": ids[i], "label": int(labels[i])} for i in order]}
    ann = _dump(tmp_path / "ann.pkl", annotation)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    dump = _dump(tmp_path / "out.pkl", [probs[i] for i in order])
    code, _, err = _import(cli, tmp_path / "r", dump, "--format", "pyskl", "--ids", str(ann))
    assert code == 0, err
    record = _stored(tmp_path / "r")
    assert record.score_kind == "probs" and record.sample_ids.tolist() == ids
    np.testing.assert_allclose(record.scores, probs, rtol=1e-6)
    # One row short: positional files must match their order file exactly.
    short = _dump(tmp_path / "short.pkl", [probs[i] for i in order[:-1]])
    code, _, err = _import(cli, tmp_path / "r2", short, "--format", "pyskl", "--ids", str(ann))
    one_line(code, err, "179 score rows", "expected 180")


def test_mmaction_dump_out_of_order_with_its_id_file_is_caught(cli, tmp_path: Path) -> None:
    ids, logits, labels = _scores("test")
    id_file = tmp_path / "ids.txt"
    id_file.write_text("\n".join(ids) + "\n")
    rows = [{"pred_score": logits[i], "gt_label": np.int64(labels[i])} for i in range(len(ids))]
    code, _, err = _import(cli, tmp_path / "r", _dump(tmp_path / "dump.pkl", rows), "--format",
                           "mmaction", "--ids", str(id_file), "--score-kind", "logits")
    assert code == 0, err
    np.testing.assert_array_equal(_stored(tmp_path / "r").scores, logits)
    # The same dump against an id file in another order: labels no longer agree by position.
    id_file.write_text("\n".join(reversed(ids)) + "\n")
    files = sorted(p.name for p in (tmp_path / "r" / "runs").iterdir())
    code, _, err = _import(cli, tmp_path / "r", _dump(tmp_path / "dump.pkl", rows), "--format",
                           "mmaction", "--ids", str(id_file))
    one_line(code, err, "label(s) differ from the registry")
    assert sorted(p.name for p in (tmp_path / "r" / "runs").iterdir()) == files


def test_nlaslr_columns_are_reordered_by_gloss(cli, tmp_path: Path) -> None:
    ids, logits, labels = _scores("test")
    table = official_split(DATASET, "test")
    assert table is not None
    vocabulary = sorted(table.classes)  # NLA-SLR's columns: its sorted class names
    to_nla = [table.classes.index(name) for name in vocabulary]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    results = {i: {"ensemble_lastprob": probs[row][to_nla], "ensemble_lasthyp": [],
                   "ref": table.classes[labels[row]]} for row, i in enumerate(ids)}
    code, _, err = _import(cli, tmp_path / "r", _dump(tmp_path / "res.pkl", results),
                           "--format", "nlaslr")
    assert code == 0, err
    np.testing.assert_allclose(_stored(tmp_path / "r").scores, probs, rtol=1e-6)
    results[ids[0]]["ref"] = "no-such-gloss"
    code, _, err = _import(cli, tmp_path / "r", _dump(tmp_path / "bad.pkl", results),
                           "--format", "nlaslr")
    one_line(code, err, "not in the class list", "no-such-gloss")


def test_npz_and_csv_bring_any_system_in(cli, tmp_path: Path) -> None:
    ids, logits, labels = _scores("val")
    npz = tmp_path / "s.npz"
    np.savez(npz, sample_ids=np.array(ids), logits=logits, labels=labels)
    code, _, err = _import(cli, tmp_path / "r", npz, "--format", "npz", split="val")
    assert code == 0, err
    np.testing.assert_array_equal(_stored(tmp_path / "r", "val").scores, logits)
    path = tmp_path / "s.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sample_id", "label", *(f"c{k}" for k in range(K))])
        for i, y, row in zip(ids, labels, logits, strict=True):
            writer.writerow([i, int(y), *(repr(float(v)) for v in row)])
    code, _, err = _import(cli, tmp_path / "r", path, "--format", "csv", split="val",
                           stream="b")
    assert code == 0, err
    np.testing.assert_array_equal(_stored(tmp_path / "r", "val", "b").scores, logits)


# ------------------------------------------------------------------------------ refusals


def test_a_code_executing_pickle_is_refused_and_never_run(cli, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # what a malicious score file would carry
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"sg09_00000": Payload()}))
    (tmp_path / "r").mkdir()
    code, _, err = _import(cli, tmp_path / "r", evil, "--format", "samslr")
    one_line(code, err, "refused to load", "system", "nothing in it was run")
    assert not marker.exists() and not (tmp_path / "r" / "runs").exists()
    # gzip'd pickles go through the same unpickler
    gz = tmp_path / "evil.pkl.gz"
    gz.write_bytes(gzip.compress(evil.read_bytes()))
    with pytest.raises(Exception, match="refused to load"):
        load_pickle(gz)
    assert not marker.exists()


@pytest.mark.parametrize("case, needle", [
    ("duplicated", "1 duplicated id(s)"),
    ("unknown", "not in the official test split"),
    ("val ids in test", "are val ids"),
    ("other class order", "label(s) differ from the registry"),
    ("width", "scores per row; expected 20"),
    ("nan", "non-finite scores"),
])
def test_bad_ids_and_labels_are_refused_with_counts_and_examples(cli, tmp_path: Path,
                                                                 case: str, needle: str) -> None:
    ids, logits, labels = _scores("test")
    rows = {i: logits[n] for n, i in enumerate(ids)}
    label_list = [int(y) for y in labels]
    if case == "duplicated":  # two file names for one registry id
        rows[f"{ids[0]}_color.mp4"] = logits[0]
        label_list.append(label_list[0])
    elif case == "unknown":
        rows["sg99_00000"] = logits[0]
        label_list.append(0)
    elif case == "val ids in test":
        val_ids, val_logits, val_labels = _scores("val")
        rows.update({i: val_logits[n] for n, i in enumerate(val_ids[:5])})
        label_list += [int(y) for y in val_labels[:5]]
    elif case == "other class order":
        label_list = [(y + 1) % K for y in label_list]
    elif case == "width":
        rows = {i: v[:-1] for i, v in rows.items()}
    elif case == "nan":
        rows[ids[3]] = np.full(K, np.nan, dtype=np.float32)
    scores = _dump(tmp_path / "s.pkl", rows)
    label_file = _dump(tmp_path / "l.pkl", (list(rows), label_list))
    (tmp_path / "r").mkdir()
    code, _, err = _import(cli, tmp_path / "r", scores, "--format", "samslr", "--labels",
                           str(label_file))
    one_line(code, err, needle, "s.pkl")
    assert not (tmp_path / "r" / "runs").exists()


def test_missing_ids_are_scored_and_counted(cli, tmp_path: Path) -> None:
    ids, logits, _ = _scores("test")
    keep = slice(0, 150)
    npz = tmp_path / "part.npz"
    np.savez(npz, sample_ids=np.array(ids[keep]), scores=logits[keep])
    code, out, err = _import(cli, tmp_path / "r", npz, "--format", "npz")
    assert code == 0 and f"30 official ids absent, e.g. {ids[150]!r}" in out, err
    meta = _stored(tmp_path / "r").meta
    assert (meta["n_eval"], meta["n_official"]) == (150, 180)
    assert meta["missing_ids"] == ids[150:]


@pytest.mark.parametrize("args, needle", [
    (("--format", "nope"), "--format: unknown format 'nope'"),
    (("--format", "npz", "--selection-split", "train"), "--selection-split: found 'train'"),
    (("--format", "npz", "--score-kind", "pred_top1"), "--score-kind: found 'pred_top1'"),
    (("--format", "pyskl"), "--ids: missing"),
])
def test_bad_options_are_refused_before_anything_is_read(cli, tmp_path: Path, args: tuple,
                                                         needle: str) -> None:
    ids, logits, _ = _scores("test")
    npz = tmp_path / "s.npz"
    np.savez(npz, sample_ids=np.array(ids), scores=logits)
    code, _, err = _import(cli, tmp_path / "r", npz, *args)
    assert needle in one_line(code, err)
    assert not (tmp_path / "r").exists()  # refused before the store was opened


def test_canonical_ids_strip_only_what_the_registry_needs() -> None:
    table = official_split(DATASET, "test")
    assert table is not None
    first = table.ids[0]
    for name in (first, f"{first}_color.mp4", f"videos/test/{first}.mp4", f"{first}_depth"):
        assert canonical_id(name, table) == first
    assert canonical_id("sg99_00001_color.mp4", table) == "sg99_00001"  # unknown: reported


# --------------------------------------------------------------- fusion of imported streams


def test_fixed_weights_reproduce_a_published_ensemble_on_imported_streams(
        cli, tmp_path: Path) -> None:
    results = tmp_path / "r"
    fused = {}
    for split in ("val", "test"):
        for stream, seed in (("j", 1), ("b", 2)):
            ids, logits, labels = _scores(split, seed)
            npz = tmp_path / f"{stream}-{split}.npz"
            np.savez(npz, sample_ids=np.array(ids), logits=logits)
            code, _, err = _import(cli, results, npz, "--format", "npz", split=split,
                                   stream=stream)
            assert code == 0, err
            fused[split] = fused.get(split, 0) + {"j": 1.0, "b": 0.9}[stream] * (
                logits - logits.mean(1, keepdims=True))
    code, _, err = cli("fuse", "--method", "ext", "--dataset", DATASET, "--weights", "j=1,b=0.9",
                       "--weights-chosen-on", "test", "--bootstrap", "0", "--results",
                       str(results))
    assert code == 0, err
    store = RecordStore(results)
    record = store.load_checked(store.latest(split="test", stream="fused:fixed")["run_id"])
    _, _, labels = _scores("test")
    expected = float((fused["test"].argmax(1) == labels).mean())
    assert record.metrics["pi@1"]["value"] == pytest.approx(expected, abs=1e-12)
    assert record.meta["test_tuned"]  # weights chosen on the reported split keep their †
    assert record.meta["fusion"]["weights"] == {"j": 1.0, "b": 0.9}


def test_groups_reach_two_level_fusion_of_imported_streams(cli, tmp_path: Path) -> None:
    results = tmp_path / "r"
    for split in ("val", "test"):
        for stream, seed in (("j", 1), ("b", 2)):
            ids, logits, _ = _scores(split, seed)
            npz = tmp_path / f"{stream}-{split}.npz"
            np.savez(npz, sample_ids=np.array(ids), logits=logits)
            assert _import(cli, results, npz, "--format", "npz", split=split,
                           stream=stream)[0] == 0
    code, _, err = cli("fuse", "--method", "ext", "--dataset", DATASET, "--weights",
                       "j=1,b=1,body=1,hand=3", "--groups", "body=j;hand=b", "--bootstrap", "0",
                       "--results", str(results))
    assert code == 0, err
    store = RecordStore(results)
    record = store.load_checked(store.latest(split="test", stream="fused:fixed")["run_id"])
    assert record.meta["config"]["fusion"]["groups"] == {"body": ["j"], "hand": ["b"]}
    assert record.meta["fusion"]["weights"] == {"j": 1.0, "b": 3.0}  # group weight x member
    code, _, err = cli("fuse", "--method", "ext", "--dataset", DATASET, "--strategy", "hier",
                       "--groups", "body=j;hand=b", "--level-search", "grid", "--grid", "0:1:3",
                       "--bootstrap", "0", "--results", str(results))
    assert code == 0, err
    hier = store.load_checked(store.latest(split="test", stream="fused:hier")["run_id"])
    assert hier.meta["fusion"]["tuned_on"] == "val"


@pytest.mark.parametrize("args, needle", [
    (("--weights", "j=1,b"), "--weights: found 'b'"),
    (("--weights", "j=-1,b=1"), "--weights: found 'j=-1'"),
    (("--weights", "j=1,j=2"), "'j' given twice"),
    (("--weights", "j=1,b=1", "--strategy", "bayes"), "--weights with --strategy bayes"),
    (("--weights-chosen-on", "val"), "--weights-chosen-on: given without --weights"),
    (("--groups", "body=j;hand=j", "--strategy", "hier"), "stream 'j' is in two groups"),
    (("--groups", "body=", "--strategy", "hier"), "--groups: found 'body='"),
    (("--groups", "a=j;b=b", "--strategy", "grid"), "--groups: given, but --strategy grid"),
])
def test_bad_weights_and_groups_are_one_line_errors(cli, tmp_path: Path, args: tuple,
                                                    needle: str) -> None:
    code, _, err = cli("fuse", "--method", "ext", "--dataset", DATASET, *args,
                       "--results", str(tmp_path / "r"))
    assert needle in one_line(code, err)
    assert not (tmp_path / "r" / "runs").exists()  # nothing fused, nothing written


# ------------------------------------------------------------------- shipped AUTSL registry


def test_autsl_imports_are_checked_against_the_shipped_official_labels(cli,
                                                                         tmp_path: Path) -> None:
    table = official_split("autsl", "test")
    assert table is not None and len(table.ids) == 3742 and len(table.classes) == 226
    rows = {f"{i}_color.mp4": np.eye(226, dtype=np.float32)[table.labels[n]]
            for n, i in enumerate(table.ids[:40])}
    names = list(rows)
    labels = [int(y) for y in table.labels[:40]]
    code, out, err = cli("import", str(_dump(tmp_path / "s.pkl", rows)), "--format", "samslr",
                         "--labels", str(_dump(tmp_path / "l.pkl", (names, labels))),
                         "--dataset", "autsl", "--split", "test", "--method", "ext",
                         "--stream", "rgb", "--bootstrap", "0", "--results", str(tmp_path / "r"))
    assert code == 0 and "3702 official ids absent" in out and "P-I@1 100.00 %" in out, err
    labels[0] = (labels[0] + 1) % 226
    code, _, err = cli("import", str(tmp_path / "s.pkl"), "--format", "samslr",
                       "--labels", str(_dump(tmp_path / "l.pkl", (names, labels))),
                       "--dataset", "autsl", "--split", "test", "--method", "ext",
                       "--stream", "rgb", "--results", str(tmp_path / "r"))
    one_line(code, err, "1 label(s) differ from the registry")


@pytest.mark.shared
def test_shipped_autsl_metadata_is_the_reference_data(shared_dir: Path) -> None:
    for split, name in (("train", "train_labels"), ("val", "validation_labels"),
                        ("test", "test_labels")):
        table = official_split("autsl", split)
        assert table is not None
        with open(shared_dir / "data" / "autsl" / f"{name}.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert list(table.ids) == [r[0] for r in rows]
        assert table.labels.tolist() == [int(r[1]) for r in rows]


@pytest.mark.parametrize("k, sizes", [(100, (1442, 338, 258)), (300, (3549, 900, 668)),
                                      (1000, (8974, 2318, 1876)), (2000, (14289, 3916, 2878))])
def test_shipped_wlasl_subsets_have_the_official_sizes(k: int, sizes: tuple) -> None:
    tables = [official_split(f"wlasl{k}", split) for split in ("train", "val", "test")]
    assert [len(t.ids) for t in tables if t is not None] == list(sizes)
    assert all(t is not None and len(t.classes) == k and t.labels.max() < k for t in tables)
    assert len(set(tables[2].labels.tolist())) == (1999 if k == 2000 else k)  # known gap


def test_shipped_metadata_matches_its_published_checksums() -> None:
    folder = Path(__file__).resolve().parents[1] / "datasets" / "metadata"
    listed = [line.split("  ") for line in (folder / "README.md").read_text().splitlines()
              if len(line) > 66 and line[64:66] == "  "]
    assert len(listed) == 9  # the eight split files and the gloss vectors
    for digest, name in listed:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.shared
def test_shipped_wlasl_metadata_is_the_v03_release(shared_dir: Path) -> None:
    import json

    release = json.loads(gzip.decompress(
        (shared_dir / "data" / "wlasl" / "WLASL_v0.3.json.gz").read_bytes()))
    table = official_split("wlasl2000", "test")
    assert table is not None and list(table.classes) == [entry["gloss"] for entry in release]
    expected = sorted((inst["video_id"], k) for k, entry in enumerate(release)
                      for inst in entry["instances"] if inst["split"] == "test")
    assert list(zip(table.ids, table.labels.tolist())) == expected


@pytest.mark.parametrize("k, sizes", [(100, (1190, 757)), (200, (2041, 1359)),
                                      (500, (3702, 2720)), (1000, (5287, 4172))])
def test_shipped_msasl_subsets_have_the_official_sizes(k: int, sizes: tuple) -> None:
    assert official_split(f"msasl{k}", "train") is None  # train metadata is not released
    tables = [official_split(f"msasl{k}", split) for split in ("val", "test")]
    assert [len(t.ids) for t in tables if t is not None] == list(sizes)
    assert all(t is not None and len(t.classes) == k and t.classes[0] == "hello"
               for t in tables)


@pytest.mark.shared
def test_shipped_msasl_ids_are_the_hash_of_the_released_clips(shared_dir: Path) -> None:
    import json

    from slrbench.datasets.official import msasl_id

    for split in ("val", "test"):
        clips = json.loads(gzip.decompress(
            (shared_dir / "data" / "msasl" / f"MSASL_{split}.json.gz").read_bytes()))
        table = official_split("msasl1000", split)
        assert table is not None
        expected = sorted((msasl_id(split, c["url"], c["start_time"], c["end_time"]), c["label"])
                          for c in clips)
        assert list(zip(table.ids, table.labels.tolist())) == expected


def test_imported_records_read_like_others_in_the_report(cli, tmp_path: Path) -> None:
    for stream, seed in (("j", 1), ("b", 2)):
        ids, logits, _ = _scores("test", seed)
        npz = tmp_path / f"{stream}.npz"
        np.savez(npz, sample_ids=np.array(ids), logits=logits)
        assert _import(cli, tmp_path / "r", npz, "--format", "npz", stream=stream)[0] == 0
    code, _, err = cli("report", "--dataset", DATASET, "--results", str(tmp_path / "r"),
                       "--out", str(tmp_path / "rep"), "--format", "md,html,latex")
    assert code == 0, err
    markdown = (tmp_path / "rep" / DATASET / f"results-{DATASET}.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ext | – |")]
    assert len(rows) == 2 and all("| ? |" in r for r in rows)  # no preset, selection unknown
    assert "? imported: which split selected the checkpoint is not known" in markdown
    assert "## Significance" in markdown and "| ext:j ? |" in markdown and "ext:b ?" in markdown
