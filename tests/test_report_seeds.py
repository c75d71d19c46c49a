"""Several seeds in the report: records that differ only in their seed share one row of the
main table with the hand-computed mean and sample standard deviation over the seeds, the seeds'
own rows sit in a table beside it, and nothing else is pooled (one seed, another configuration,
a record without a seed)."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from test_fusion_fixtures import DATASET, make_record

from slrbench.fusion.pipeline import default_options, fuse_from_store
from slrbench.metrics import BootstrapConfig, evaluate
from slrbench.report.seeds import group_seeds
from slrbench.report.tables import build_report, format_metric
from slrbench.store import RecordStore

K = 8
N = 40
LABELS = np.arange(N) % K  # 5 samples per class: P-C@1 equals P-I@1 below


def _record(stream: str, accuracy: float, seed: int | None, split: str = "test",
            bootstrap: bool = False, **fields):
    """A record whose top-1 is right on the first `accuracy * N` samples."""
    right = np.arange(N) < round(accuracy * N)
    logits = np.zeros((N, K), dtype=np.float32)
    logits[np.arange(N), np.where(right, LABELS, (LABELS + 1) % K)] = 5.0
    ids = [f"{split[0]}{i:04d}" for i in range(N)]
    config = BootstrapConfig(200, 0) if bootstrap else None
    metrics = evaluate(logits, LABELS, K, bootstrap=config).to_dict()["metrics"]
    return make_record(split, stream, ids, LABELS, logits, seed=seed, metrics=metrics, **fields)


def _report(store: RecordStore, out: Path, formats: tuple[str, ...] = ("md", "csv", "latex"),
            console: Console | None = None) -> dict[str, Path]:
    paths = build_report(store, DATASET, "test", out, formats, console)
    return {p.name: p for p in paths}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _table_rows(markdown: str, section: str | None = None) -> list[str]:
    """The `| slgcn |` rows of the main table, or of the section headed `section`."""
    if section is not None:
        markdown = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    else:
        markdown = markdown.split("\n## ", 1)[0]
    return [line for line in markdown.splitlines() if line.startswith("| slgcn |")]


@pytest.fixture
def three_seeds(tmp_path: Path) -> RecordStore:
    store = RecordStore(tmp_path / "r")
    for seed, accuracy in ((0, 0.5), (1, 0.6), (2, 0.7)):
        store.add(_record("j", accuracy, seed, bootstrap=True))
    return store


def test_three_seeds_share_a_row_with_mean_and_sample_std(three_seeds: RecordStore,
                                                          tmp_path: Path) -> None:
    files = _report(three_seeds, tmp_path / "rep")
    markdown = files["results-toy8.md"].read_text()
    (row,) = _table_rows(markdown)
    # 50, 60, 70 %: mean 60, sample std sqrt(((-10)^2 + 0 + 10^2) / 2) = 10
    assert row.startswith("| slgcn | tiny | j | 0, 1, 2 | 60.00 ± 10.00 (n=3) |")
    cells = row.split(" | ")
    assert cells[6] == "60.00 ± 10.00 (n=3)"  # P-C@1: balanced classes, same as P-I@1
    assert row.endswith("| [3 seeds](#per-seed-results) |")
    assert "mean ± sample standard deviation (ddof = 1)" in markdown
    assert "[per-seed results](#per-seed-results)" in markdown

    seed_rows = _table_rows(markdown, "Per-seed results")
    assert [r.split(" | ")[3] for r in seed_rows] == ["0", "1", "2"]
    for seed_row, value in zip(seed_rows, ("50.00", "60.00", "70.00"), strict=True):
        assert seed_row.split(" | ")[4].startswith(f"{value} [")  # with its own interval

    (main,) = _rows(files["results-toy8.csv"])
    assert float(main["pi@1"]) == pytest.approx(60.0)
    assert float(main["pi@1_std"]) == pytest.approx(10.0)
    assert (main["n_seeds"], main["seed"], main["pi@1_lo"], main["pi@1_hi"]) == ("3", "0;1;2",
                                                                                 "", "")
    assert len(main["run_id"].split(";")) == 3
    seeds = _rows(files["results-toy8_seeds.csv"])
    assert [(r["seed"], float(r["pi@1"])) for r in seeds] == [("0", 50.0), ("1", 60.0),
                                                              ("2", 70.0)]
    assert all(r["pi@1_lo"] != "" for r in seeds)

    tex = files["results-toy8.tex"].read_text()
    (body,) = [line for line in tex.splitlines() if line.startswith("slgcn")]
    assert r"$60.00 \pm 10.00$" in body and "tiny, 3 seeds" in body
    assert "mean $\\pm$ sample standard deviation over the seeds" in tex


def test_the_per_seed_table_is_one_click_away_in_html_and_on_the_terminal(
        three_seeds: RecordStore, tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    files = _report(three_seeds, tmp_path / "rep", ("md", "html"), console)
    page = files["results-toy8.html"].read_text()
    assert '<h2 id="per-seed-results">' in page and 'href="#per-seed-results"' in page
    terminal = console.export_text()
    assert "seeds 0, 1, 2" in terminal and "± 10.00 (n=3)" in terminal


def test_one_seed_keeps_the_value_with_its_interval(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "r")
    record = _record("j", 0.5, 0, bootstrap=True)
    store.add(record)
    files = _report(store, tmp_path / "rep")
    markdown = files["results-toy8.md"].read_text()
    (row,) = _table_rows(markdown)
    metric = record.meta["metrics"]["pi@1"]
    assert row.startswith(f"| slgcn | tiny | j | 0 | {format_metric(metric, 'pi@1')} |")
    assert f"[{record.run_id}](" in row
    assert "±" not in markdown and "Per-seed results" not in markdown
    assert "results-toy8_seeds.csv" not in files
    (main,) = _rows(files["results-toy8.csv"])
    assert (main["n_seeds"], main["seed"], main["pi@1_std"]) == ("1", "0", "")
    assert float(main["pi@1_lo"]) == pytest.approx(100 * metric["ci_low"])
    assert r"\pm" not in files["results-toy8.tex"].read_text()


def test_two_configurations_are_not_pooled(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "r")
    for seed, a, b in ((0, 0.5, 0.2), (1, 0.7, 0.4)):
        store.add(_record("j", a, seed))
        store.add(_record("j", b, seed, config_sha256="e" * 64,
                          overrides={"train.epochs": 2}))
    files = _report(store, tmp_path / "rep")
    rows = _table_rows(files["results-toy8.md"].read_text())
    # sample std of two values 20 points apart: 20 / sqrt(2)
    assert {r.split(" | ")[4] for r in rows} == {"60.00 ± 14.14 (n=2)", "30.00 ± 14.14 (n=2)"}
    assert any("tiny (train.epochs=2)" in r and "30.00 ± 14.14" in r for r in rows)
    assert sorted(r["n_seeds"] for r in _rows(files["results-toy8.csv"])) == ["2", "2"]


def test_a_record_without_a_seed_stays_on_its_own(three_seeds: RecordStore,
                                                  tmp_path: Path) -> None:
    three_seeds.add(_record("j", 0.9, None))  # same stream and configuration, imported
    files = _report(three_seeds, tmp_path / "rep")
    rows = _table_rows(files["results-toy8.md"].read_text())
    assert len(rows) == 2
    alone = next(r for r in rows if r.split(" | ")[3] == "–")
    assert alone.split(" | ")[4] == "90.00" and "±" not in alone
    assert any("60.00 ± 10.00 (n=3)" in r for r in rows)  # the three seeds without it
    meta = {"method": "m", "stream": "j", "config_sha256": "c"}
    assert [len(g.metas) for g in group_seeds([{**meta, "seed": None}] * 2, {})] == [1, 1]
    assert [len(g.metas) for g in group_seeds([{**meta, "seed": s} for s in (0, 1)], {})] == [2]


def test_fusions_of_each_seed_are_pooled_like_their_inputs(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "r")
    for seed, (j, b) in enumerate(((0.5, 0.4), (0.6, 0.5), (0.8, 0.6))):
        for split in ("val", "test"):
            store.add(_record("j", j, seed, split=split))
            store.add(_record("b", b, seed, split=split))
    options = default_options("slgcn", DATASET, strategy="mean")
    for seed in range(3):
        fuse_from_store(store, "slgcn", DATASET, options, streams=("j", "b"), input_seed=seed,
                        bootstrap=None)
    fused = sorted(store.find(stream="fused:mean", split="test"), key=lambda r: r["seed"])
    values = [100 * r["pi@1"] for r in fused]
    assert [r["seed"] for r in fused] == [0, 1, 2] and len(set(values)) > 1
    # Each fusion names its own seed's inputs, so the fused records' config hashes differ.
    assert len({r["config_sha256"] for r in fused}) == 3
    files = _report(store, tmp_path / "rep", ("md",))
    rows = _table_rows(files["results-toy8.md"].read_text())
    (row,) = [r for r in rows if "| fused:mean |" in r]
    expected = f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f} (n=3)"
    assert row.split(" | ")[4] == expected
    assert len(rows) == 3  # j, b and the fusion: one row each
    # Inputs that are no longer in the store cannot be compared: each fusion stays on its own.
    metas = [store.load(r["run_id"]).meta for r in fused]
    assert len(group_seeds(metas, {})) == 3


def test_a_seed_counts_once_per_row() -> None:
    def meta(seed: int, finished: str) -> dict:
        return {"method": "m", "stream": "fused:mean", "config_sha256": "c", "seed": seed,
                "finished_at": finished, "run_id": f"r{seed}-{finished}"}

    # Seed 0 twice with one key (a fusion repeated on re-run inputs): the newer one is pooled.
    groups = group_seeds([meta(0, "t1"), meta(0, "t2"), meta(1, "t1")], {})
    assert [[m["run_id"] for m in g.metas] for g in groups] == [["r0-t2", "r1-t1"], ["r0-t1"]]


def test_the_summary_page_compares_seed_means_not_the_luckiest_seed(three_seeds: RecordStore
                                                                    ) -> None:
    from slrbench.report.summary import best_by_method

    # Stream b: one seed at 65 % beats j's mean (60 %) but not j's best seed (70 %).
    three_seeds.add(_record("b", 0.65, 0))
    assert best_by_method(three_seeds) == {"slgcn": {DATASET: "65.00 (b)"}}
    three_seeds.add(_record("b", 0.45, 1))  # b now averages 55 %: j's pooled row wins
    assert best_by_method(three_seeds) == {"slgcn": {DATASET: "60.00 ± 10.00 (n=3) (j)"}}


def test_fusions_searched_with_their_inputs_seed_pool_across_seeds(tmp_path: Path) -> None:
    """The main job and sweeps fuse each seed with that seed as the search seed."""
    store = RecordStore(tmp_path / "r")
    for seed, (j, b) in enumerate(((0.5, 0.6), (0.6, 0.6), (0.7, 0.6))):
        for split in ("val", "test"):
            store.add(_record("j", j, seed, split=split))
            store.add(_record("b", b, seed, split=split))
        options = default_options("slgcn", DATASET, strategy="mean", seed=seed)
        fuse_from_store(store, "slgcn", DATASET, options, input_seed=seed, bootstrap=None)
    metas = [store.load(r["run_id"]).meta for r in store.find(split="test")]
    configs = {str(r["run_id"]): str(r["config_sha256"]) for r in store.find()}
    fused = [g for g in group_seeds(metas, configs) if g.first["stream"].startswith("fused:")]
    assert [g.seeds for g in fused] == [(0, 1, 2)]


def test_significance_compares_entries_within_one_seed(three_seeds: RecordStore,
                                                       tmp_path: Path) -> None:
    three_seeds.add(_record("b", 0.4, 0, bootstrap=True))  # seed 0 has the most records
    markdown = _report(three_seeds, tmp_path / "rep", ("md",))["results-toy8.md"].read_text()
    section = markdown.split("## Significance", 1)[1].split("\n## ", 1)[0]
    assert "Records of seed 0 only" in section
    rows = [line for line in section.splitlines() if line.startswith("| slgcn:")]
    assert rows and all("(" not in line.split(" | ")[0] for line in rows)  # no seed vs seed
