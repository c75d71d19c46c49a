"""Report sections on known records: the significance matrix against hand-computed McNemar and
Holm values, claimed versus reproduced from a method's published facts, and overridden runs
labelled as such (table, CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from test_fusion_fixtures import DATASET, make_record

from slrbench.metrics import BootstrapConfig, evaluate, holm_bonferroni
from slrbench.report.cells import preset_label
from slrbench.report.claims import claims, markdown_section
from slrbench.report.significance import pairwise_tests
from slrbench.report.tables import build_report
from slrbench.store import RecordStore

K = 8


def _record(stream: str, right: np.ndarray, labels: np.ndarray, **fields):
    """A test record whose top-1 is right exactly where `right` is True."""
    logits = np.zeros((labels.size, K), dtype=np.float32)
    wrong = (labels + 1) % K
    logits[np.arange(labels.size), np.where(right, labels, wrong)] = 5.0
    ids = [f"t{i:04d}" for i in range(labels.size)]
    metrics = evaluate(logits, labels, K, bootstrap=None).to_dict()["metrics"]
    return make_record("test", stream, ids, labels, logits, metrics=metrics, **fields)


def test_mcnemar_and_holm_match_hand_computed_values() -> None:
    labels = np.arange(40) % K
    a = np.zeros(40, bool)
    b = np.zeros(40, bool)
    a[:10] = True  # A right, B wrong: 10
    b[10:12] = True  # B right, A wrong: 2
    a[12:30] = b[12:30] = True  # both right: 18 (McNemar ignores them)
    tests = pairwise_tests([_record("a", a, labels), _record("b", b, labels)],
                           BootstrapConfig(resamples=500, seed=0))
    (test,) = tests
    # exact two-sided binomial: 2 P(X <= 2 | n = 12, 1/2) = 2 (1 + 12 + 66) / 4096
    assert (test.comparison.mcnemar_b, test.comparison.mcnemar_c) == (10, 2)
    assert test.comparison.mcnemar_p == pytest.approx(158 / 4096, abs=1e-12)
    assert test.mcnemar_holm == pytest.approx(158 / 4096, abs=1e-12)  # one pair: unchanged
    assert test.comparison.delta["pi@1"].value == pytest.approx(8 / 40)
    assert (test.a, test.b) == ("slgcn:a", "slgcn:b")  # the better entry first


def test_holm_runs_over_every_pair_shown() -> None:
    labels = np.arange(60) % K
    rng = np.random.default_rng(3)
    records = [_record(s, rng.random(60) < p, labels) for s, p in
               (("a", 0.9), ("b", 0.6), ("c", 0.3))]
    tests = pairwise_tests(records, BootstrapConfig(resamples=200, seed=0))
    assert len(tests) == 3
    raw = [t.comparison.mcnemar_p for t in tests]
    assert [t.mcnemar_holm for t in tests] == pytest.approx(holm_bonferroni(raw))


def test_claims_put_published_numbers_beside_the_best_record() -> None:
    labels = np.arange(40) % K
    right = np.arange(40) < 38  # 95.0 %
    record = _record("j", right, labels)
    record.meta["dataset"] = "autsl"  # SL-GCN publishes AUTSL numbers
    found = claims([record], "autsl")
    joint = next(c for c in found if c.published.setting == "joint stream, train-only")
    assert joint.published.value == 95.35 and joint.value == pytest.approx(95.0)
    text = "\n".join(markdown_section(found, "test"))
    assert "| P-I@1 | 95.35 |" in text and "| -0.35 |" in text
    assert "[V] released score files" in text
    assert claims([record], "synthsign-tiny") == []  # nothing published for SynthSign
    imported = _record("j", right, labels, method="my-model")  # not a registered method
    assert claims([imported], "autsl") == []


def test_overridden_runs_say_so_in_every_table(tmp_path: Path) -> None:
    labels = np.arange(40) % K
    store = RecordStore(tmp_path / "r")
    store.add(_record("j", np.arange(40) < 20, labels, overrides={"train.epochs": 2}))
    store.add(_record("b", np.arange(40) < 30, labels))
    assert preset_label({"preset": "tiny", "overrides": {"train.epochs": 2}}) == \
        "tiny (train.epochs=2)"
    assert preset_label({"preset": None}) == "–"
    paths = build_report(store, DATASET, "test", tmp_path / "rep", ("md", "csv"))
    markdown = next(p for p in paths if p.suffix == ".md").read_text()
    assert "| slgcn | tiny (train.epochs=2) | j |" in markdown
    assert "| slgcn | tiny | b |" in markdown and "## Significance" in markdown
    with open(next(p for p in paths if p.suffix == ".csv"), newline="") as f:
        rows = {r["stream"]: r for r in csv.DictReader(f)}
    assert rows["j"]["overrides"] == "train.epochs=2" and rows["b"]["overrides"] == ""


def test_latex_and_csv_round_trip_the_numbers(tmp_path: Path) -> None:
    import re

    from slrbench.report.latex import escape

    labels = np.arange(40) % K
    store = RecordStore(tmp_path / "r")
    rng = np.random.default_rng(0)
    for stream, p in (("j_1", 0.5), ("b", 0.8)):
        logits = rng.normal(size=(40, K)).astype(np.float32)
        hit = rng.random(40) < p
        logits[hit, labels[hit]] += 4
        ids = [f"t{i:04d}" for i in range(40)]
        metrics = evaluate(logits, labels, K, bootstrap=BootstrapConfig(200, 0)).to_dict()
        store.add(make_record("test", stream, ids, labels, logits, metrics=metrics["metrics"],
                              test_tuned=stream == "b"))
    paths = build_report(store, DATASET, "test", tmp_path / "rep", ("latex", "csv"))
    tex = next(p for p in paths if p.suffix == ".tex").read_text()
    with open(next(p for p in paths if p.suffix == ".csv"), newline="") as f:
        rows = {r["stream"]: r for r in csv.DictReader(f)}
    body = [line for line in tex.splitlines() if line.startswith("slgcn")]
    assert len(body) == 2 and r"j\_1" in tex and escape("50%_#") == r"50\%\_\#"
    for line in body:
        cells = [c.strip() for c in line.removesuffix("\\\\").split("&")]
        stream = cells[1].replace("\\_", "_")
        for column, cell in zip(("pi@1", "pi@5", "pc@1", "pc@5"), cells[3:7], strict=True):
            value, low, high = map(float, re.findall(r"-?\d+\.\d+", cell))
            assert value == pytest.approx(float(rows[stream][column]), abs=0.005)
            assert low == pytest.approx(float(rows[stream][f"{column}_lo"]), abs=0.05)
            assert high == pytest.approx(float(rows[stream][f"{column}_hi"]), abs=0.05)
    tuned = next(line for line in body if "& b &" in line)
    assert tuned.startswith(r"slgcn$^{\dagger}$") and r"$\dagger$~checkpoint" in tex


def test_profiled_models_fill_the_efficiency_columns(tmp_path: Path) -> None:
    from slrbench.profiling import PROFILE_VERSION, store_profile

    labels = np.arange(40) % K
    store = RecordStore(tmp_path / "r")
    store.add(_record("j", np.arange(40) < 20, labels, params=1234))
    store.add(_record("b", np.arange(40) < 30, labels, params=1234))
    store_profile(store.root, {
        "profile_version": PROFILE_VERSION, "method": "slgcn", "preset": "tiny",
        "dataset": DATASET, "num_classes": K, "device": "cpu",
        "streams": {"j": {"params": 1234, "gflops_per_sample": 0.5,
                          "train_samples_per_s": 10.0, "infer_samples_per_s": 40.0},
                    "b": {"same_as": "j"}}})
    paths = build_report(store, DATASET, "test", tmp_path / "rep", ("md", "csv"))
    markdown = next(p for p in paths if p.suffix == ".md").read_text()
    assert markdown.count("| 1,234 | 0.5 | 10 / 40 |") == 2  # b shares j's model
    with open(next(p for p in paths if p.suffix == ".csv"), newline="") as f:
        rows = {r["stream"]: r for r in csv.DictReader(f)}
    assert rows["b"]["gflops_per_sample"] == "0.5" and rows["j"]["infer_samples_per_s"] == "40.0"


def test_methods_command_explains_the_marks_and_sources_it_shows(cli) -> None:
    from slrbench.marks import legend

    code, out, err = cli("methods", "dsta")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "† checkpoint or fusion weights selected on the reported split" in flat
    assert "[3P] transcribed by a third party" in flat
    assert "[M] from memory" not in flat  # only the markers that occur are explained
    assert legend("†?", ["[V] re-scored", "[R] README"]) == [
        "† checkpoint or fusion weights selected on the reported split",
        "? imported: which split selected the checkpoint is not known (no --selection-split)",
        "[R] read in the method's own repository (README, result image, code, file name)",
        "[V] recomputed by slrbench from released per-sample outputs and real labels"]


def test_html_report_is_one_self_contained_file_with_every_table_and_figure(
        tmp_path: Path) -> None:
    import re

    labels = np.arange(40) % K
    store = RecordStore(tmp_path / "r")
    rng = np.random.default_rng(1)
    for stream, p in (("j", 0.5), ("b", 0.7), ("jm", 0.9)):
        store.add(_record(stream, rng.random(40) < p, labels))
    paths = build_report(store, DATASET, "test", tmp_path / "rep", ("md", "html"))
    page = next(p for p in paths if p.suffix == ".html").read_text()
    markdown = next(p for p in paths if p.suffix == ".md").read_text()
    assert '<meta name="viewport"' in page and "<script>" in page  # phone layout, sorting
    assert not re.search(r"""(src|href)=["']https?:""", page)  # nothing fetched
    images = markdown.count("![")
    assert images >= 3 and page.count('src="data:image/png;base64,') == images
    assert page.count("<table>") == markdown.count("\n| --- |") + markdown.startswith("| --- |")
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        assert heading.split(" ")[0] in page


def test_confused_pairs_count_errors_by_true_and_predicted_class() -> None:
    from slrbench.report.figures import confused_pairs

    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([1, 1, 0, 1, 0, 0, 2, 2])  # 0->1 twice, 1->0 once, 2->0 once
    logits = np.eye(K, dtype=np.float32)[predicted] * 5
    record = make_record("test", "j", [f"t{i}" for i in range(8)], labels, logits)
    pairs = confused_pairs(record, ("zero", "one", "two"))
    assert pairs[0] == ("0 zero", "1 one", 2, 3)
    assert sorted(pairs[1:]) == [("1 one", "0 zero", 1, 2), ("2 two", "0 zero", 1, 3)]


def test_a_summary_page_spans_the_datasets_with_records(cli, tmp_path: Path) -> None:
    labels = np.arange(40) % K
    store = RecordStore(tmp_path / "r")
    store.add(_record("j", np.arange(40) < 20, labels))  # toy8: 50 %
    store.add(_record("b", np.arange(40) < 30, labels))  # toy8: 75 %, the best
    other = _record("j", np.arange(40) < 10, labels, test_tuned=True)
    other.meta["dataset"] = other.meta["subset"] = "toy8b"
    store.add(other)
    code, _, err = cli("report", "--dataset", DATASET, "--results", str(store.root), "--out",
                       str(tmp_path / "rep"))
    assert code == 0, err
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "| method | toy8 | toy8b |" in summary
    assert "| slgcn | 75.00 (b) | 25.00 † (j) |" in summary
    assert (tmp_path / "rep" / "summary.html").read_text().count("<table>") == 1
    single = RecordStore(tmp_path / "one")
    single.add(_record("j", np.arange(40) < 20, labels))
    assert cli("report", "--dataset", DATASET, "--results", str(single.root), "--out",
               str(tmp_path / "rep1"))[0] == 0
    assert not (tmp_path / "rep1" / "summary.md").exists()  # one dataset: no summary


def test_a_fused_row_adds_up_the_profiles_of_its_streams() -> None:
    from slrbench.profiling import PROFILE_VERSION, fused_profile

    profiles = [{"profile_version": PROFILE_VERSION, "method": "slgcn", "preset": "tiny",
                 "num_classes": K, "streams": {
                     "j": {"gflops_per_sample": 0.5, "train_samples_per_s": 10.0,
                           "infer_samples_per_s": 40.0},
                     "b": {"gflops_per_sample": 0.25, "train_samples_per_s": 40.0,
                           "infer_samples_per_s": 40.0}}}]
    meta = {"method": "slgcn", "preset": "tiny", "num_classes": K, "split": "test",
            "fusion": {"inputs": [{"stream": "j", "split": "test"},
                                  {"stream": "b", "split": "test"}]}}
    # 0.1 s + 0.025 s per training sample: 8 samples/s; 0.025 + 0.025 s: 20 samples/s
    assert fused_profile(profiles, meta) == {"gflops_per_sample": 0.75,
                                             "train_samples_per_s": 8.0,
                                             "infer_samples_per_s": 20.0}
    meta["fusion"]["inputs"].append({"stream": "jm", "split": "test"})  # not profiled
    assert fused_profile(profiles, meta) is None
    # Two heads of one network (one checkpoint, CAMFuse's rgb and fused) run once.
    profiles[0]["streams"]["fused"] = {"same_as": "j"}
    meta["fusion"]["inputs"] = [{"stream": "j", "split": "test", "checkpoint_sha256": "c1"},
                                {"stream": "fused", "split": "test", "checkpoint_sha256": "c1"},
                                {"stream": "b", "split": "test", "checkpoint_sha256": "c2"}]
    assert fused_profile(profiles, meta) == {"gflops_per_sample": 0.75,
                                             "train_samples_per_s": 8.0,
                                             "infer_samples_per_s": 20.0}


def test_every_mark_is_shown_and_explained_under_the_table(tmp_path: Path) -> None:
    from slrbench.marks import FLAG_NOTES

    labels = np.arange(40) % K
    right = np.arange(40) < 25
    store = RecordStore(tmp_path / "r")
    store.add(_record("tuned", right, labels, test_tuned=True))
    store.add(_record("merged", right, labels, val_test_merged=True))
    store.add(_record("extra", right, labels, test_protocol={"extra_data": True}))
    store.add(_record("recon", right, labels, reconstruction=True))
    store.add(_record("unknown", right, labels, selection_split="unknown"))
    store.add(_record("fused:stack", right, labels, fusion={
        "inputs": [], "strategy": "stack", "score_space": "logits",
        "tuned_on": "test-crossfit-signer", "crossfit": {"k": 3, "folds_by": "signer"}}))
    paths = build_report(store, DATASET, "test", tmp_path / "rep", ("md", "latex"))
    markdown = next(p for p in paths if p.suffix == ".md").read_text()
    rows = {line.split(" | ")[2]: line for line in markdown.splitlines()
            if line.startswith("| slgcn |")}
    expected = {"tuned": "†", "merged": "‡", "extra": "*", "recon": "◊", "unknown": "?",
                "fused:stack": "⊙"}
    for stream, mark in expected.items():
        assert f"| {mark} |" in rows[stream], rows[stream]
        assert f"{mark} {FLAG_NOTES[mark]}" in markdown  # the legend under the table
    assert "| test-crossfit-signer |" in rows["fused:stack"]  # the tuned-on column
    tex = next(p for p in paths if p.suffix == ".tex").read_text()
    for mark in (r"\dagger", r"\ddagger", r"\diamond", r"\odot"):
        assert mark in tex


def test_the_significance_matrix_repeats_the_pairs_row_minus_column() -> None:
    from slrbench.report.significance import markdown_section as significance_markdown

    labels = np.arange(60) % K
    rng = np.random.default_rng(5)
    records = [_record(s, rng.random(60) < p, labels) for s, p in (("a", 0.9), ("b", 0.5))]
    (test,) = pairwise_tests(records, BootstrapConfig(resamples=200, seed=0))
    text = "\n".join(significance_markdown([test]))
    delta = f"{100 * test.comparison.delta['pi@1'].value:+.1f}"
    assert f"| {test.a} | – | {delta} (p {test.mcnemar_holm:.2g}" in text
    assert f"| {test.b} |  | – |" in text  # below the diagonal: left empty
