"""The command line: listings, a short real run, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_line as assert_one_line_error


def test_listings(cli) -> None:
    code, out, _ = cli("datasets")
    assert code == 0 and "synthsign-tiny" in out and "wlasl2000" in out
    code, out, _ = cli("methods")
    assert code == 0 and "slgcn" in out
    code, out, _ = cli("methods", "slgcn")
    assert code == 0 and "3,838,584 (K=226)" in out and "4,294,502 (K=2000)" in out
    assert "51.50" in out


def test_describe_synthsign_with_figure(cli, tmp_path: Path) -> None:
    figure = tmp_path / "synthsign.png"
    code, out, _ = cli("datasets", "synthsign-tiny", "--figure", str(figure))
    assert code == 0 and "minimal" in out.lower()
    assert figure.stat().st_size > 10_000
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "--method", "nope", "--dataset", "synthsign-tiny"], ["--method", "nope", "slgcn"]),
        (["run", "--method", "slgcn", "--dataset", "nope"], ["--dataset", "nope", "synthsign"]),
        (["run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--streams", "j,xx"],
         ["--streams", "xx"]),
        (["run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--preset", "huge"],
         ["--preset", "huge", "tiny"]),
        (["run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--epochs", "0"],
         ["--epochs", "0"]),
        (["run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--device", "tpu"],
         ["--device", "tpu"]),
        (["run", "--method", "slgcn", "--dataset", "autsl"], ["autsl", "no prepared local copy"]),
        (["run", "--method", "nla", "--dataset", "synthsign-tiny", "--set", "language.imm"],
         ["--set", "KEY=VALUE"]),
        (["run", "--method", "nla", "--dataset", "synthsign-tiny", "--set", "language.imn=false"],
         ["language.imn", "unknown field", "imm"]),
        (["run", "--method", "nla", "--dataset", "synthsign-tiny", "--set", "train.epochs=ten"],
         ["train.epochs", "'ten'", "an integer"]),
        (["run", "--method", "nla", "--dataset", "synthsign-tiny", "--set", "language.imm=0"],
         ["language.imm", "true or false"]),
        (["run", "--method", "slgcn,dsta", "--dataset", "synthsign-tiny", "--set",
          "train.lr=0.1"], ["--set", "one method"]),
        (["run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--epochs", "2", "--set",
          "train.epochs=3"], ["--epochs", "train.epochs"]),
        (["methods", "nope"], ["nope"]),
        (["datasets", "nope"], ["nope"]),
        (["report", "--dataset", "nope"], ["nope"]),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tmp_path: Path, args: list[str],
                                      needles: list[str]) -> None:
    results = ["--results", str(tmp_path)] if args[0] in ("run", "report") else []
    code, _, err = cli(*args, *results)
    assert_one_line_error(code, err, *needles)


def test_report_without_records(cli, tmp_path: Path) -> None:
    code, _, err = cli("report", "--dataset", "synthsign-tiny", "--results", str(tmp_path))
    assert_one_line_error(code, err, "no test records")


def test_short_run_then_report_then_corrupt_record(cli, tmp_path: Path) -> None:
    results, reports = tmp_path / "results", tmp_path / "reports"
    code, out, err = cli(
        # A hand stream: the cheapest model (10 joints) keeps this end-to-end test in the fast loop.
        "run", "--method", "lgf", "--dataset", "synthsign-tiny", "--streams", "lhand_jm",
        "--epochs", "1", "--set", "train.lr=0.004", "--set", "train.warmup_epochs=0",
        "--bootstrap", "50", "--quiet", "--results", str(results),
    )
    assert code == 0, err
    assert "run summary" in out
    runs = sorted((results / "runs").iterdir())
    records = [json.loads((r / "run.json").read_text()) for r in runs]
    assert [r["split"] for r in records].count("test") == 1
    train = records[0]["config"]["train"]  # --set lands in the stored (and hashed) config
    assert (train["epochs"], train["lr"], train["warmup_epochs"]) == (1, 0.004, 0)

    code, out, err = cli("report", "--dataset", "synthsign-tiny", "--results", str(results),
                         "--out", str(reports))
    assert code == 0, err
    markdown = (reports / "synthsign-tiny" / "results-synthsign-tiny.md").read_text()
    assert "## Minimal pairs" in markdown and "| lgf | lhand_jm | 0 |" in markdown
    assert (reports / "synthsign-tiny" / "results-synthsign-tiny.csv").is_file()

    test_run = next(r for r in runs if json.loads((r / "run.json").read_text())["split"] == "test")
    (test_run / "run.json").write_text('{"record_version": 1, "run_id": ')  # torn write
    code, _, err = cli("report", "--dataset", "synthsign-tiny", "--results", str(results),
                       "--out", str(reports))
    assert_one_line_error(code, err, str(test_run / "run.json"))


@pytest.mark.parametrize("args, option", [
    (("fuse", "--strategy", "bayes", "--seed", "-1"), "--seed"),
    (("fuse", "--strategy", "bayes", "--seed", str(2**64)), "--seed"),
    (("fuse", "--strategy", "bayes", "--trials", "1000000000"), "--trials"),
    (("fuse", "--strategy", "mean", "--bootstrap", "1000000000"), "--bootstrap"),
    (("fuse", "--strategy", "grid", "--grid", "0:1:1000000000"), "--grid"),
    (("run", "--epochs", "100000000"), "--epochs"),
    (("run", "--seed", "-3"), "--seed"),
    (("run", "--streams", ","), "--streams"),  # empty must not mean "all streams"
    (("fuse", "--streams", ""), "--streams"),
])
def test_unbounded_numbers_are_refused_before_any_work(cli, tmp_path, args, option) -> None:
    # Checked before anything is allocated or trained: nothing appears in the store.
    code, _, err = cli(*args, "--method", "slgcn", "--dataset", "synthsign-tiny",
                       "--results", str(tmp_path / "r"))
    assert_one_line_error(code, err, option, "expected")
    assert not (tmp_path / "r" / "runs").exists()
