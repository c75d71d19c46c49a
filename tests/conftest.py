"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Property tests: the full suite (CI) draws 120 examples each, the fast loop 20 (CONTRIBUTING.md).
FULL_EXAMPLES, FAST_EXAMPLES = 120, 20
SHARED = PROJECT_ROOT.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    fast = "not slow" in (config.getoption("markexpr") or "")
    settings.register_profile("slrbench", max_examples=FAST_EXAMPLES if fast else FULL_EXAMPLES)
    settings.load_profile("slrbench")


@pytest.hookimpl(tryfirst=True)  # before xdist's, which turns the group marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With `--dist loadgroup` (pyproject.toml) the tests of a module with slow tests that share
    a module-scoped fixture (a trained model) stay on one worker, so it is built once; every
    other test goes to whichever worker is free, the slow ones first."""
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    slow = {module(item) for item in items if item.get_closest_marker("slow")}
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        definitions = fixtures.name2fixturedefs.values() if fixtures is not None else ()
        if module(item) in slow and any(chain[-1].scope == "module" for chain in definitions):
            item.add_marker(pytest.mark.xdist_group(module(item)))
    # Slow tests first: xdist hands out single tests in this order, so a long one never starts
    # last while the other worker sits idle (pytest's sort is stable: modules stay in order).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def shared_dir() -> Path:
    """../shared reference data; tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared reference data is not present beside the project")
    return SHARED


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """An explicit thread count: torch's default (all cores) collapses as soon as anything else
    runs on a small CI machine, and determinism tests compare runs at one thread count."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generated datasets go to a per-session folder, never the user's ~/.cache."""
    import os

    os.environ.setdefault("SLRBENCH_CACHE", str(tmp_path_factory.mktemp("slrbench-cache")))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `slrbench ARGS` in-process; returns (exit code, stdout, stderr)."""
    import sys

    from slrbench.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        argv = sys.argv
        sys.argv = ["slrbench", *args]
        try:
            main()
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        finally:
            sys.argv = argv
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
