"""`slrbench profile`: figures stored beside the records and shown in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_line

from slrbench.methods.slgcn import PRESETS, SLGCN


def test_profile_measures_stores_and_reaches_the_report(cli, tmp_path: Path) -> None:
    results = tmp_path / "r"
    code, out, err = cli("profile", "--method", "slgcn", "--steps", "2", "--results",
                         str(results))
    assert code == 0, err
    data = json.loads((results / "profiles" / "slgcn-tiny-synthsign-tiny-cpu.json").read_text())
    joint = data["streams"]["j"]
    expected = sum(p.numel() for p in SLGCN(20, "samslr_27", PRESETS["tiny"]).parameters()
                   if p.requires_grad)
    assert joint["params"] == expected and f"{expected:,}" in out
    assert joint["gflops_per_sample"] > 0 and joint["train_samples_per_s"] > 0
    assert joint["infer_samples_per_s"] > joint["train_samples_per_s"]  # no backward pass
    assert data["streams"]["b"] == {"same_as": "j"} and data["torch_threads"] == 1
    assert joint["input"] == {"channels": 3, "frames_train": 16, "frames_eval": 20,
                              "joints": 27, "batch": 16}


def test_linear_profile_is_closed_form(cli, tmp_path: Path) -> None:
    code, _, err = cli("profile", "--method", "linear", "--dataset", "autsl", "--results",
                       str(tmp_path / "r"))
    assert code == 0, err
    data = json.loads((tmp_path / "r" / "profiles" / "linear-tiny-autsl-cpu.json").read_text())
    row = data["streams"]["pooled"]
    assert row["params"] == 788 * 226 and row["gflops_per_sample"] == pytest.approx(
        2 * 787 * 226 / 1e9, abs=1e-6)


@pytest.mark.parametrize("args, needle", [
    (("--method", "nope"), "--method: unknown method 'nope'"),
    (("--method", "slgcn", "--preset", "huge"), "--preset: unknown preset 'huge'"),
    (("--method", "slgcn", "--threads", "0"), "--threads"),
    (("--method", "slgcn", "--steps", "0"), "--steps"),
])
def test_bad_profile_options_are_one_line_errors(cli, tmp_path: Path, args: tuple,
                                                 needle: str) -> None:
    code, _, err = cli("profile", *args, "--results", str(tmp_path / "r"))
    assert needle in one_line(code, err)
