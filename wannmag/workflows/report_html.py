"""report.md → one self-contained report.html (python-markdown: tables, headings, fenced code blocks).

Figures referenced as ``![alt](relative/path.png)`` are embedded as base64 data URIs and drawn at the full width
of the text column; a figure that is missing (e.g. a copied report without its figures) becomes a one-line note
instead of a broken image.  No external resource is referenced: the style sheet is inline, raw HTML in the Markdown
is escaped (the report quotes file names and status strings), and an image or link with a network address is not
fetched (image: note; link: text only).  Units and conventions are those of the report itself (meV, K, Å;
H = Σ_{i<j} S_i·J_ij·S_j, J > 0 AF).
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from pathlib import Path

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from .._atomic import atomic_write_text
from ..errors import WannmagError

__all__ = ["markdown_to_html", "render_report"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; line-height: 1.45;
       max-width: 64em; margin: 1.5em auto; padding: 0 1.2em; color: #1b1f24; }
h1 { font-size: 1.7em; border-bottom: 2px solid #d0d7de; padding-bottom: .25em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
tr:nth-child(even) td { background: #fafbfc; }
td:not(:first-child) { white-space: nowrap; text-align: right; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 4px; padding: .7em 1em; overflow-x: auto;
      font-size: .82em; line-height: 1.3; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
p code, li code { background: #f0f2f4; padding: 0 .25em; border-radius: 3px; }
img.figure { display: block; width: 100%; height: auto; margin: .8em 0; border: 1px solid #eef0f2; }
p.missing-figure { color: #8a6d3b; background: #fcf8e3; padding: .4em .8em; border-left: 3px solid #e0c36b; }
"""

_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")  # http:, https:, file:, data:, //host …


def _embed_images(root, base: Path) -> None:
    """Element-tree pass: every <img> → data URI of the local file (full width) or a note; external links → text."""
    parents = {child: parent for parent in root.iter() for child in parent}
    for img in list(root.iter("img")):
        src = img.get("src", "")
        path = None if _EXTERNAL.match(src) else (base / src)
        if path is not None and path.is_file():
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            img.set("src", f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}")
            img.set("class", "figure")
            continue
        why = "not embedded (network address)" if path is None else "missing"
        parent = parents.get(img)
        note = img.makeelement("span", {"class": "missing-figure-text"})
        note.text = f"[figure '{img.get('alt', '')}': {src} {why}]"
        note.tail = img.tail
        if parent is not None:
            idx = list(parent).index(img)
            parent.remove(img)
            parent.insert(idx, note)
            if parent.tag == "p" and len(parent) == 1 and not (parent.text or "").strip():
                parent.set("class", "missing-figure")
    for a in list(root.iter("a")):
        if _EXTERNAL.match(a.get("href", "")) and not a.get("href", "").startswith("#"):
            a.attrib.pop("href", None)
            a.tag = "span"


def markdown_to_html(md: str, base_dir, title: str = "wannmag report") -> str:
    """The Markdown text ``md`` as one self-contained HTML page; relative figure paths are read from ``base_dir``."""
    base = Path(base_dir)

    class _Embed(Treeprocessor):
        def run(self, root):
            _embed_images(root, base)

    class _Local(Extension):
        def extendMarkdown(self, md_):  # noqa: N802 (python-markdown API)
            md_.preprocessors.deregister("html_block")  # raw HTML is shown as text, never interpreted
            md_.inlinePatterns.deregister("html")
            md_.treeprocessors.register(_Embed(md_), "wannmag_embed", 0)

    body = markdown.markdown(md, extensions=["tables", "fenced_code", "sane_lists", "nl2br", _Local()],
                             output_format="html")
    m = re.search(r"^# (.+)$", md, flags=re.M)
    page_title = html.escape(m.group(1).strip() if m else title)
    return ("<!doctype html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
            f"<title>{page_title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def render_report(md_path, html_path=None) -> Path:
    """Render the Markdown file ``md_path`` (figures relative to its folder) to ``html_path`` (default: same name,
    .html); returns the written path.  An unreadable input is one :class:`WannmagError` line naming the file."""
    md_path = Path(md_path)
    try:
        md = md_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WannmagError(f"{md_path}: cannot read the report ({getattr(exc, 'strerror', None) or exc})") from None
    out = Path(html_path) if html_path is not None else md_path.with_suffix(".html")
    atomic_write_text(out, markdown_to_html(md, md_path.parent))
    return out
