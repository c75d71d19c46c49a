"""The report as one self-contained HTML file: the Markdown report's sections rendered to HTML,
its figures embedded as data URIs, sortable tables, a layout that reads on a phone. Nothing is
loaded from the network."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;
padding:12px;line-height:1.45;color:#1d1d1f}
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}.scroll{overflow-x:auto;margin:0.6em 0}
table{border-collapse:collapse;font-size:0.82em}th,td{border:1px solid #ddd;padding:3px 6px;
text-align:left;white-space:nowrap}th{background:#f3f3f5;cursor:pointer;position:sticky;top:0}
th:after{content:" \\2195";color:#aaa}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto;display:block;margin:0.6em 0}code{font-size:0.9em}
td:first-child,th:first-child{position:sticky;left:0;background:#fff;z-index:1}
@media (max-width:600px){body{padding:6px}table{font-size:0.74em}}
"""
_SCRIPT = """
document.querySelectorAll("table").forEach(function(t){
  t.querySelectorAll("th").forEach(function(th,i){
    th.addEventListener("click",function(){
      var rows=Array.from(t.tBodies[0].rows),up=th.dataset.up!=="1";th.dataset.up=up?"1":"0";
      var key=function(r){var s=r.cells[i].innerText,m=s.match(/[-+]?\\d+(\\.\\d+)?/);
        return m&&s.trim().search(/[-+]?\\d/)===0?parseFloat(m[0]):s;};
      rows.sort(function(a,b){var x=key(a),y=key(b);
        if(typeof x==="number"&&typeof y==="number")return up?x-y:y-x;
        return up?String(x).localeCompare(String(y)):String(y).localeCompare(String(x));});
      rows.forEach(function(r){t.tBodies[0].appendChild(r);});});});});
window.addEventListener("load",function(){  // read by the browser check in the tests
  var shown=Array.from(document.images).filter(function(i){return i.naturalWidth>0;});
  document.body.dataset.images=String(shown.length);document.body.dataset.ready="1";});
"""
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_NOT_IN_SLUG = re.compile(r"[^\w\- ]")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', out)


def _cells(line: str) -> list[str]:
    return [cell.strip().replace("\\|", "|") for cell in line.strip().strip("|").split(" | ")]


def _anchor(heading: str, seen: dict[str, int]) -> str:
    """GitHub's anchor for a heading (lower case, punctuation dropped, spaces -> hyphens, `-1`
    on a repeat), so the Markdown report's in-page links (`#per-seed-results`) work here too."""
    base = _NOT_IN_SLUG.sub("", heading.strip().lower()).replace(" ", "-")
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}-{count}"


def _table(rows: list[str]) -> str:
    header, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    head = "".join(f"<th>{_inline(c)}</th>" for c in header)
    lines = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                    for row in body)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{lines}</tbody></table></div>")


def _image(alt: str, name: str, folder: Path) -> str:
    path = folder / name
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def markdown_to_html(markdown: str, title: str, folder: Path) -> str:
    """The subset of Markdown the report writes: headings, paragraphs, lists, pipe tables and
    images (embedded from `folder`)."""
    parts: list[str] = []
    anchors: dict[str, int] = {}
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            parts.append(_table(block))
            continue
        image = _IMAGE.match(line.strip())
        if image:
            parts.append(_image(image.group(1), image.group(2), folder))
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            text = line[level:].strip()
            parts.append(f'<h{level} id="{html.escape(_anchor(text, anchors))}">'
                         f"{_inline(text)}</h{level}>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            parts.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
        i += 1
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(parts) + f"\n<script>{_SCRIPT}</script>\n</body></html>\n")
