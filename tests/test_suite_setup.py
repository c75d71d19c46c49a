"""The test suite's own set-up keeps its promises (CONTRIBUTING.md#tests)."""

from __future__ import annotations

import os

import pytest


def test_grouped_tests_reach_xdist_as_groups(request: pytest.FixtureRequest) -> None:
    """conftest.py groups the tests that share a trained model; xdist honours a group only when
    its name reaches the node id, which pytest 9.2 silently stopped (pytest-xdist#1386; hence
    the pin in pyproject.toml). Without it each worker would train the model again."""
    if "PYTEST_XDIST_WORKER" not in os.environ or not request.config.getvalue("loadgroup"):
        pytest.skip("checks a run under pytest-xdist with --dist loadgroup (the default options)")
    grouped = [item.nodeid for item in request.session.items
               if any(True for _ in item.iter_markers("xdist_group"))]
    if not grouped:
        pytest.skip("no selected module shares a trained model between its slow tests")
    assert all("@" in nodeid for nodeid in grouped), grouped[:3]
