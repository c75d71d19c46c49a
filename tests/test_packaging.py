"""The built wheel holds one import package, `slrbench`, and works outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Builds a wheel and installs it into a fresh virtual environment: part of the full suite.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("slrbench-*.whl")
    return path


def test_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"slrbench", next(t for t in top if t.endswith(".dist-info"))}
    for required in (
        "slrbench/cli/__init__.py",
        "slrbench/methods/slgcn.py",
        "slrbench/methods/registry.py",
        "slrbench/datasets/registry.py",
        "slrbench/datasets/synthsign/glosses.json",
        "slrbench/safe_pickle.py",
        "slrbench/datasets/metadata/README.md",
        "slrbench/datasets/metadata/autsl/SignList_ClassId_TR_EN.csv",
        "slrbench/datasets/metadata/autsl/test_labels.csv.gz",
        "slrbench/datasets/metadata/gloss_vectors/glove6b50d.npz",
        "slrbench/methods/camfuse.py",
        "slrbench/datasets/video.py",
    ):
        assert required in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "slrbench = slrbench.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_imports_and_runs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import slrbench, slrbench.methods.registry as r, slrbench.datasets.registry as d;"
        "from slrbench.datasets.official import official_split as o;"
        "print(slrbench.__file__); print(r.get_method('slgcn').spec.name, len(d.REGISTRY),"
        " len(o('autsl', 'test').ids))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    where, summary = done.stdout.splitlines()
    assert where.startswith(str(target))
    assert summary.startswith("slgcn ") and summary.endswith(" 3742")  # shipped metadata
    listed = subprocess.run(
        [sys.executable, "-m", "slrbench", "methods"], env=env, cwd=tmp_path, capture_output=True,
        text=True
    )
    assert listed.returncode == 0 and "slgcn" in listed.stdout
