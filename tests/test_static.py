"""Static checks as tests, so CI runs them with the suite: ruff (lint rules in pyproject.toml)
over the whole repository and mypy (strict defs) over the `slrbench` package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' brings it")
    return found


def package_tree(target: Path) -> Path:
    """A `slrbench/` folder of links that mirrors setuptools' package-dir mapping."""
    package = target / "slrbench"
    package.mkdir(parents=True)
    for entry in (ROOT / "bench").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "methods").symlink_to(ROOT / "methods")
    (package / "datasets").symlink_to(ROOT / "datasets")
    return target


def test_ruff_is_clean() -> None:
    done = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_is_clean(tmp_path: Path) -> None:
    tree = package_tree(tmp_path / "tree")
    done = subprocess.run(
        [_tool("mypy"), "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "-p", "slrbench"],
        cwd=tmp_path, env={"MYPYPATH": str(tree), "PATH": str(Path(sys.executable).parent)},
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
