"""The HTML report in a real browser: headless Chromium renders it, takes a screenshot, runs its
script without errors and shows every table and figure. Skips where Chromium is not installed
(`.ci/run` installs Debian's `chromium` when it can)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_report_sections import _record

from slrbench.report.tables import build_report
from slrbench.store import RecordStore

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine"),
              pytest.mark.slow]  # runs a headless Chromium
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=3000", "--enable-logging=stderr", "--v=0"]


def _page(tmp_path: Path) -> tuple[Path, str]:
    labels = np.arange(40) % 8
    store = RecordStore(tmp_path / "r")
    rng = np.random.default_rng(2)
    for stream, p in (("j", 0.5), ("b", 0.7), ("jm", 0.9)):
        store.add(_record(stream, rng.random(40) < p, labels))
    paths = build_report(store, "toy8", "test", tmp_path / "rep", ("md", "html"))
    page = next(p for p in paths if p.suffix == ".html")
    return page, page.read_text()


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_report_renders_with_every_table_and_figure_and_no_script_error(tmp_path: Path) -> None:
    page, source = _page(tmp_path)
    dom = _chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-500:]
    errors = [line for line in dom.stderr.splitlines()
              if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert not errors, errors
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body is not None and 'data-ready="1"' in body.group(1)  # the script ran to the end
    images = source.count('src="data:image/png;base64,')
    assert images >= 3 and f'data-images="{images}"' in body.group(1)  # every figure decoded
    assert dom.stdout.count("<table>") == source.count("<table>") >= 3
    for width, name in ((390, "phone"), (1280, "desktop")):
        shot = tmp_path / f"{name}.png"
        done = _chromium(f"--window-size={width},2000", f"--screenshot={shot}", page.as_uri())
        assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
