"""`slrbench fuse` and the report's fusion section, on records built in the test, plus the
ablation tables against a per-subset loop."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_errors import one_line as assert_one_line
from test_fusion_fixtures import DATASET, STREAMS, fill_store, make_pair

from slrbench.fusion.pipeline import default_options, fuse_records
from slrbench.metrics import BootstrapConfig, evaluate
from slrbench.store import RecordStore

ARGS = ("fuse", "--method", "slgcn", "--dataset", DATASET)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    val, test = make_pair()
    fill_store(RecordStore(tmp_path / "results"), val, test)
    return tmp_path / "results"


def test_fuse_cli_writes_records_with_ablations(cli, store_dir: Path) -> None:
    code, out, err = cli(*ARGS, "--strategy", "bayes", "--trials", "20", "--ablate",
                         "loo,subsets,greedy", "--bootstrap", "100", "--results", str(store_dir))
    assert code == 0, err
    assert "fusion weights" in out and "leave one stream out" in out and "greedy" in out
    store = RecordStore(store_dir)
    fused = store.find(fusion_strategy="bayes")
    assert {r["split"] for r in fused} == {"val", "test"}
    test_row = next(r for r in fused if r["split"] == "test")
    run_dir = Path(test_row["path"])
    assert {"ablation-loo.csv", "ablation-subsets.csv", "ablation-greedy.csv",
            "ablation.json"} <= {p.name for p in run_dir.iterdir()}
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["stream"] == "fused:bayes" and meta["fusion"]["tuned_on"] == "val"
    assert [i["stream"] for i in meta["fusion"]["inputs"]] == list(STREAMS)
    assert len(pd.read_csv(run_dir / "ablation-subsets.csv")) == 2 ** len(STREAMS) - 1
    summary = json.loads((run_dir / "ablation.json").read_text())
    assert summary["weight_policy"] == "refit" and summary["subsets_ranked_on"] == "val"
    # The search facts are a side-file detail; the record's block keeps its keys.
    assert summary["subsets_search"]["tuned_on"] == "val"
    assert "subsets_search" not in meta["fusion"]["ablations"]
    assert meta["fusion"]["ablations"]["weight_policy"] == "refit"
    assert "re-fitted weights" in " ".join(out.split())


def test_fuse_cli_refuses_without_val(cli, tmp_path: Path) -> None:
    _, test = make_pair(with_val=False)
    fill_store(RecordStore(tmp_path), None, test)
    code, _, err = cli(*ARGS, "--strategy", "grid", "--results", str(tmp_path))
    assert_one_line(code, err, "no val records", "--allow-test-tuning")
    code, _, err = cli(*ARGS, "--strategy", "nope", "--results", str(tmp_path))
    assert_one_line(code, err, "--strategy", "nope")
    code, _, err = cli(*ARGS, "--streams", "j,zz", "--results", str(tmp_path))
    assert_one_line(code, err, "--streams", "zz")
    code, out, err = cli(*ARGS, "--strategy", "grid", "--crossfit", "3", "--bootstrap", "0",
                         "--results", str(tmp_path))
    assert code == 0, err
    assert "test-crossfit-sample" in out and "⊙" in out  # fixture ids are not SynthSign's
    code, _, err = cli(*ARGS, "--strategy", "grid", "--crossfit", "3", "--allow-test-tuning",
                       "--results", str(tmp_path))
    assert_one_line(code, err, "--crossfit with --allow-test-tuning", "expected one")


def test_test_tuned_marker_in_fuse_output_and_report(cli, tmp_path: Path) -> None:
    _, test = make_pair(with_val=False)
    fill_store(RecordStore(tmp_path / "r"), None, test)
    code, out, err = cli(*ARGS, "--strategy", "grid", "--allow-test-tuning", "--ablate", "loo",
                         "--bootstrap", "50", "--results", str(tmp_path / "r"))
    assert code == 0, err
    assert "†" in out
    code, out, err = cli("report", "--dataset", DATASET, "--results",
                         str(tmp_path / "r"), "--out", str(tmp_path / "reports"))
    assert code == 0, err
    assert "†" in out
    report = (tmp_path / "reports" / DATASET / f"results-{DATASET}.md").read_text()
    fused_rows = [line for line in report.splitlines()
                  if "fused:grid" in line and line.startswith("|")]
    assert fused_rows and all("†" in line for line in fused_rows)
    assert "## Fusion" in report and "### Ablations · slgcn fused:grid †" in report
    assert "not a clean test result" in report
    fused_id = RecordStore(tmp_path / "r").find(stream="fused:grid", split="test")[0]["run_id"]
    figure = tmp_path / "reports" / DATASET / f"ablation-{fused_id}.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![ablation heatmap](ablation-{fused_id}.png)" in report
    csv = pd.read_csv(tmp_path / "reports" / DATASET / f"results-{DATASET}.csv")
    assert csv.loc[csv["stream"] == "fused:grid", "tuned_on"].tolist() == ["test"]


def test_clean_fusion_has_no_marker_in_report(cli, store_dir: Path, tmp_path: Path) -> None:
    assert cli(*ARGS, "--strategy", "mean", "--bootstrap", "0", "--results", str(store_dir))[0] == 0
    code, _, err = cli("report", "--dataset", DATASET, "--results", str(store_dir),
                       "--out", str(tmp_path / "rep"))
    assert code == 0, err
    report = (tmp_path / "rep" / DATASET / f"results-{DATASET}.md").read_text()
    row = next(line for line in report.splitlines() if "| fused:mean |" in line)
    assert "†" not in row


def test_ablation_tables_equal_a_per_subset_loop() -> None:
    val, test = make_pair(n_val=60, n_test=70)
    options = default_options("slgcn", "synthsign-tiny", strategy="grid")
    outcome = fuse_records(val, test, options, ablate=("subsets", "loo", "greedy"),
                           bootstrap=BootstrapConfig(resamples=50), ci_rows=3,
                           subset_weights="restricted")
    from slrbench.fusion.records import stack_records

    stack = stack_records(test, "logits", "test")
    fitted = outcome.result.fitted
    subsets = outcome.tables["subsets"].frame.set_index("streams")
    for mask in itertools.product([False, True], repeat=len(STREAMS)):
        if not any(mask):
            continue
        w = fitted.weights * np.array(mask)
        fused = np.einsum("s,snk->nk", w, stack.scores.astype(np.float64)) / w.sum()
        ref = evaluate(fused, stack.labels, bootstrap=None).metrics
        row = subsets.loc["+".join(s for s, on in zip(STREAMS, mask) if on)]
        for key in ("pi@1", "pi@5", "pc@1", "pc@5"):
            assert row[f"test_{key}"] == pytest.approx(ref[key].value)
    with_ci = set(subsets.index[subsets["test_pi@1_lo"].notna()])
    assert with_ci == set(subsets.index[:3]) | {"j+b+jm+bm"}  # top 3 rows plus the full set
    loo = outcome.tables["loo"].frame
    assert loo["removed"].tolist() == ["none", *STREAMS] and loo["test_pi@1_lo"].notna().all()
    greedy = outcome.tables["greedy"].frame
    assert sorted(greedy["added"]) == sorted(STREAMS)
    assert greedy["n_streams"].tolist() == [1, 2, 3, 4]
    first = greedy.iloc[0]
    singles = subsets[subsets["n_streams"] == 1]
    assert first["val_pi@1"] == singles["val_pi@1"].max()  # step 1 picks the best on val


def test_loo_and_greedy_rows_refit_the_fusion_on_each_subset() -> None:
    from slrbench.fusion.records import stack_records
    from slrbench.fusion.strategies import fit_protocol

    val, test = make_pair(n_val=60, n_test=70, strengths=(1.6, 0.2, 1.0, 0.8))
    options = default_options("slgcn", "synthsign-tiny", strategy="grid")
    outcome = fuse_records(val, test, options, ablate=("loo", "greedy", "subsets"),
                           bootstrap=None)
    val_stack = stack_records(val, "logits", "val")
    test_stack = stack_records(test, "logits", "test")
    loo = outcome.tables["loo"].frame.set_index("removed")
    for removed in STREAMS:
        kept = [s for s in STREAMS if s != removed]
        refit = fit_protocol(options, val_stack.select(kept), test_stack.select(kept))
        ref = evaluate(refit.test_fused, test_stack.labels, bootstrap=None).metrics
        row = loo.loc[removed]
        assert json.loads(row["weights"]) == pytest.approx(
            dict(zip(kept, refit.fitted.weights / refit.fitted.weights.sum())), abs=1e-6)
        assert row["test_pi@1"] == pytest.approx(ref["pi@1"].value)
    greedy = outcome.tables["greedy"].frame
    assert greedy["n_streams"].tolist() == [1, 2, 3, 4]
    assert greedy["val_pi@1"].iloc[-1] == pytest.approx(loo.loc["none", "val_pi@1"])


def test_twelve_stream_ablation_rows_stay_readable_at_80_columns() -> None:
    from rich.console import Console

    from slrbench.fusion.report import ablation_rich, compact_streams

    streams = [f"{p}_{m}" for p in ("body", "lhand", "rhand") for m in ("j", "b", "jm", "bm")]
    assert compact_streams("body_b+body_bm+rhand_j") == "body b,bm · rhand j"
    assert compact_streams("j+b") == "j,b"
    row = {"val_pi@1": 0.9083, "test_pi@1": 0.9056, "test_pi@1_lo": 0.8611,
           "test_pi@1_hi": 0.9444, "test_pc@1": 0.9056}
    tables = {"subsets": pd.DataFrame([{"rank": 1, "streams": "+".join(streams), **row}]),
              "loo": pd.DataFrame([{"removed": "lhand_bm", "streams": "+".join(streams[:-1]),
                                    **row, "delta_test_pi@1": -0.0111}])}
    for name, frame in tables.items():
        console = Console(width=80, record=True)
        console.print(ablation_rich(name, frame))
        text = console.export_text()
        assert "90.56" in text and "90.83" in text and "…" not in text, text
    assert "lhand_bm" in text and "-1.11" in text


def test_ablations_ranked_on_test_say_so_and_figures_never_collide(cli, tmp_path: Path) -> None:
    _, test = make_pair(with_val=False)
    fill_store(RecordStore(tmp_path / "r"), None, test)
    outputs = []
    for seed in ("0", "1"):  # two fused records with the same stream name, fused:bayes
        code, out, err = cli(*ARGS, "--strategy", "bayes", "--trials", "5", "--seed", seed,
                             "--allow-test-tuning", "--ablate", "subsets", "--bootstrap", "0",
                             "--results", str(tmp_path / "r"))
        assert code == 0, err
        outputs.append(out)
    assert all("ranked on test (no val records)" in " ".join(out.split()) for out in outputs)
    code, out, err = cli("report", "--dataset", DATASET, "--results",
                         str(tmp_path / "r"), "--out", str(tmp_path / "reports"))
    assert code == 0, err
    report = (tmp_path / "reports" / DATASET / f"results-{DATASET}.md").read_text()
    assert "**subsets** (ranked on test (no val records))" in report
    fused = RecordStore(tmp_path / "r").find(stream="fused:bayes", split="test")
    assert len(fused) == 2
    for row in fused:
        assert (tmp_path / "reports" / DATASET / f"ablation-{row['run_id']}.png").is_file()


@pytest.mark.parametrize("option, value",
                         [("--grid", "a:b:c"), ("--streams", "[bold]j[/bold],:smile:")])
def test_user_text_in_errors_is_printed_literally(cli, store_dir: Path, option: str,
                                                  value: str) -> None:
    # Rich would turn ":b:" into an emoji and "[bold]" into markup; the error must echo the input.
    code, _, err = cli(*ARGS, "--strategy", "grid", option, value, "--results", str(store_dir))
    shown = value if option == "--grid" else "[bold]j[/bold]"
    assert_one_line(code, err, option, shown)
    assert err.isascii()  # no emoji rendered
