"""The worked examples of docs/architecture.md run as written, and the package layout keeps
its promises (public re-exports, every subpackage shipped)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PUBLIC_PACKAGES = ("slrbench.store", "slrbench.training", "slrbench.fusion", "slrbench.report",
                   "slrbench.cli", "slrbench.methods.blocks")


def section_code(heading: str) -> list[str]:
    """The ```python blocks under one `## heading` of docs/architecture.md."""
    text = ARCHITECTURE.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def example_method() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(section_code("Adding a method")[0], namespace)
    return namespace


@pytest.fixture(scope="module")
def example_dataset() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(section_code("Adding a dataset")[0], namespace)
    return namespace


@pytest.mark.slow  # trains 20 epochs to show the example learns
def test_worked_method_trains_through_the_runner(example_method: dict[str, Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example writes to ./results
    namespace = dict(example_method)
    exec(section_code("Adding a method")[1], namespace)
    outcome = namespace["outcomes"][0]
    assert outcome.status == "trained"
    test_pi = outcome.metrics["test"]["pi@1"]["value"]
    assert test_pi >= 3 / 20, f"the example method should learn: test P-I@1 {test_pi:.3f}"
    from slrbench.store import RecordStore

    record = RecordStore(tmp_path / "results").load(outcome.run_ids["test"])
    assert record.meta["method"] == "posemlp" and record.scores.shape[1] == 20


def test_worked_dataset_keeps_ids_labels_and_poses_aligned(example_dataset: dict[str, Any]) -> None:
    subset = example_dataset["subset"]
    source = subset.source
    assert subset.spec.num_classes == 8 and subset.spec.name == "synthsign-tiny-first8"
    for split in ("train", "val", "test"):
        labels = subset.labels(split)
        assert labels.max() < 8 and len(labels) == len(subset.spec.splits[split]) > 0
        # the same sample keeps its label and keypoints under the subset's ids
        index = list(source.spec.splits[split]).index(subset.spec.splits[split][0])
        assert labels[0] == source.labels(split)[index]
        np.testing.assert_array_equal(subset.pose(split).data[0], source.pose(split).data[index])


def test_worked_method_runs_on_the_worked_dataset(example_method: dict[str, Any],
                                                  example_dataset: dict[str, Any],
                                                  tmp_path: Path) -> None:
    import torch

    from slrbench.store import RecordStore
    from slrbench.training import RunRequest, run

    adapter = example_method["PoseMLPAdapter"]()
    request = RunRequest(method=adapter, dataset=example_dataset["subset"], preset="tiny",
                         streams=("b",), device=torch.device("cpu"), progress=False,
                         overrides={"train.epochs": 2}, bootstrap=None)
    (outcome,) = run(request, RecordStore(tmp_path))
    assert outcome.metrics["test"]["pi@1"]["value"] >= 0.0
    record = RecordStore(tmp_path).load(outcome.run_ids["test"])
    assert record.meta["dataset"] == "synthsign-tiny-first8" and record.scores.shape[1] == 8


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_public_names_are_exported(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported, f"{package} lists its public names in __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names missing: {missing}"


def test_every_package_folder_is_shipped() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = settings["package-dir"]
    found = set()
    for package, folder in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *parts)))
    assert found == set(settings["packages"]), (
        f"pyproject packages and folders disagree: {sorted(found ^ set(settings['packages']))}"
    )
