"""The project documents itself: every document the code or the docs cite exists, every anchor
resolves, method cards say what `slrbench methods NAME` says, nothing points outside the repo.

Refresh the generated blocks of the method cards after changing a method's facts with
``SLRBENCH_UPDATE_DOCS=1 python -m pytest tests/test_docs.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from slrbench.methods.registry import METHOD_NAMES, get_method
from slrbench.report.method_card import card_markdown, generated_markers

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CODE_ROOTS = ("bench", "methods", "datasets", "tests", "benchmarks")
# A citation in code: docs/<path>.md, optionally #anchor, optionally more anchors of the same
# document after a comma or "and" ("docs/evaluation.md#metrics and #seeds").
CITATION = re.compile(r"(docs/[A-Za-z0-9_./-]+\.md)((?:#[a-z0-9-]+)?(?:(?:, | and )#[a-z0-9-]+)*)")
SECTION_SIGN = "\u00a7"
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
CARD_HEADINGS = (
    "What it is", "Upstream sources", "Streams and heads", "Input pipeline", "Architecture",
    "Training recipe", "Test protocol", "Presets", "Divergences and reconstruction decisions",
    "Default fusion", "Published numbers", "Upstream pitfalls", "Facts from slrbench methods",
)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    in_code = False
    for line in markdown.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def python_files() -> list[Path]:
    return [p for root in CODE_ROOTS for p in (ROOT / root).rglob("*.py")]


def markdown_files() -> list[Path]:
    return sorted(DOCS.rglob("*.md")) + [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]


def test_code_cites_only_project_documents_that_exist() -> None:
    missing = []
    for path in python_files():
        text = path.read_text()
        # The old citation style named sections of documents the project does not have.
        assert SECTION_SIGN not in text, f"{path.relative_to(ROOT)}: cite docs/<file>.md#<anchor>"
        for match in CITATION.finditer(text):
            target = ROOT / match.group(1)
            if not target.is_file():
                missing.append(f"{path.relative_to(ROOT)}: {match.group(1)} does not exist")
                continue
            for anchor in re.findall(r"#([a-z0-9-]+)", match.group(2)):
                if anchor not in anchors(target):
                    missing.append(
                        f"{path.relative_to(ROOT)}: {match.group(1)}#{anchor} has no such heading"
                    )
    assert not missing, "\n".join(missing)


def test_markdown_links_resolve() -> None:
    broken = []
    for page in markdown_files():
        for target in MARKDOWN_LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_nothing_points_outside_the_repository() -> None:
    # Users have only the repository: docs and package code never send them to ../shared.
    offenders = [
        str(path.relative_to(ROOT))
        for path in [*markdown_files(), *(p for p in python_files() if p.parts[-2] != "tests")]
        if re.search(r"\.\./shared|/work/shared", path.read_text())
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_card_agrees_with_the_methods_command(name: str) -> None:
    card = DOCS / "methods" / f"{name}.md"
    assert card.is_file(), f"every registered method has a card: {card} is missing"
    text = card.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert [h for h in headings if h in CARD_HEADINGS] == list(CARD_HEADINGS), headings
    begin, end = generated_markers(name)
    head, found_begin, rest = text.partition(begin + "\n")
    stored, found_end, tail = rest.partition(end)
    assert found_begin and found_end, f"{card}: the generated block's markers are missing"
    expected = card_markdown(get_method(name))
    if os.environ.get("SLRBENCH_UPDATE_DOCS") == "1":
        card.write_text(head + begin + "\n" + expected + end + tail)
        stored = expected
    assert stored == expected, (
        f"{card} disagrees with `slrbench methods {name}`; refresh it with "
        "SLRBENCH_UPDATE_DOCS=1 python -m pytest tests/test_docs.py"
    )


def test_every_method_is_in_the_card_index() -> None:
    index = (DOCS / "methods" / "README.md").read_text()
    for name in METHOD_NAMES:
        assert f"({name}.md)" in index, f"docs/methods/README.md does not link the {name} card"
