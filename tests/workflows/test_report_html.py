"""report.html: the Markdown report rendered (python-markdown) into one self-contained page.

Checked on the stored accurate CrI3 run (data/runs/CrI3_accurate): every row of every Markdown table comes back as a
real <table> row with the same numbers, the figures are embedded byte for byte, nothing points outside the file.
A headless-Chromium screenshot (where /usr/bin/chromium exists; skipped otherwise) checks that the page renders.
"""

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "data" / "runs" / "CrI3_accurate"
MC_PNG = REPO / "docs" / "img" / "cri3_accurate_mc_curves.png"
CHROMIUM = Path("/usr/bin/chromium")


class _Page(HTMLParser):
    """Tables (rows of cell texts), images, headings, <pre> texts and every URL-valued attribute of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.images, self.headings, self.pres, self.urls, self.tags = [], [], [], [], [], []
        self._cell = self._pre = self._head = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "data", "poster") and v is not None]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(a)
        elif tag in ("h1", "h2", "h3"):
            self._head = ""
        elif tag == "pre":
            self._pre = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None
        elif tag in ("h1", "h2", "h3"):
            self.headings.append(self._head.strip())
            self._head = None
        elif tag == "pre":
            self.pres.append(self._pre)
            self._pre = None

    def handle_data(self, data):
        for name in ("_cell", "_head", "_pre"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name) + data)


def _md_tables(md: str) -> list[list[list[str]]]:
    """The pipe tables of a Markdown text, parsed independently of python-markdown (header + body rows)."""
    tables, cur = [], None
    for ln in md.splitlines():
        if ln.startswith("|"):
            cells = [c.strip().replace("**", "") for c in ln.strip().strip("|").split("|")]
            if set("".join(cells)) <= set("-: "):
                continue  # the |---|---| separator
            if cur is None:
                cur = []
                tables.append(cur)
            cur.append(cells)
        else:
            cur = None
    return tables


def _figures(tmp: Path, md: str) -> dict:
    """Put a PNG at every figure path the report names (the stored run keeps only the Monte Carlo curves)."""
    import re

    made = {}
    for rel in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MC_PNG, p)
        made[rel] = p.read_bytes()
    return made


@pytest.fixture(scope="module")
def stored_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    md = (RUN / "report.md").read_text()
    shutil.copy(RUN / "report.md", tmp / "report.md")
    return tmp, md, _figures(tmp, md)


def test_stored_report_renders_real_tables_with_its_numbers(stored_report):
    from wannmag.workflows.report_html import render_report

    tmp, md, figs = stored_report
    page = render_report(tmp / "report.md").read_text()
    p = _Page()
    p.feed(page)
    want = _md_tables(md)
    assert len(want) >= 2 and len(p.tables) == len(want)
    for t_md, t_html in zip(want, p.tables):
        assert t_html == t_md  # every cell, header included, verbatim
    energies = {row[0]: row[1] for row in p.tables[0][1:]}
    assert energies["Neel"] == "+24.03" and energies["zigzag"] == "+13.33" and energies["FM"] == "+0.00"
    routes = {row[0]: row[1:] for row in p.tables[1][1:]}
    assert routes["energy mapping"] == ["-3.553", "-0.588", "-0.007"]
    # the same J as the stored step result (an independent source of the numbers)
    J = json.loads((RUN / "steps" / "mapping.json").read_text())["J_meV"]
    assert [float(v) for v in routes["energy mapping"]] == pytest.approx(J, abs=5e-4)
    # headings and code blocks are real elements, not text in one <pre>
    heads = [ln.lstrip("#").strip() for ln in md.splitlines() if ln.startswith("#")]
    assert p.headings == heads and "Summary" in p.headings
    assert any("ZSA classification" in s for s in p.pres) and len(p.pres) == md.count("```") // 2
    # figures: embedded byte for byte, full width
    assert len(p.images) == len(figs) == 3
    for img, data in zip(p.images, figs.values()):
        head, b64 = img["src"].split(",", 1)
        assert head == "data:image/png;base64" and base64.b64decode(b64) == data
        assert img.get("class") == "figure"
    assert "img.figure { display: block; width: 100%" in page
    # nothing outside the file: every URL is a data URI, no scripts, no style sheets to fetch
    assert p.urls and all(u.startswith("data:") for u in p.urls)
    assert "script" not in p.tags and "link" not in p.tags and "http" not in page.split("<body>")[0]


def test_missing_figure_raw_html_and_external_image_are_not_passed_through(tmp_path):
    from wannmag.workflows.report_html import markdown_to_html

    md = ("# t\n\n![gone](fig/none.png)\n\n![web](https://example.org/x.png)\n\n"
          "status: <script>alert(1)</script> and [a link](http://example.org)\n")
    page = markdown_to_html(md, tmp_path)
    p = _Page()
    p.feed(page)
    assert p.images == [] and p.urls == []
    assert "script" not in p.tags and "&lt;script&gt;" in page
    assert "fig/none.png missing" in page and "network address" in page


def test_unreadable_report_is_one_error_line(tmp_path):
    from wannmag.errors import WannmagError
    from wannmag.workflows.report_html import render_report

    with pytest.raises(WannmagError, match=r"nope\.md: cannot read the report"):
        render_report(tmp_path / "nope.md")


def test_step_report_writes_the_rendered_page(tmp_path):
    """The workflow's report step itself (on the stored step results) writes tables and embedded figures."""
    from wannmag.workflows.engine import Context
    from wannmag.workflows.run import step_report

    results = {f.stem: json.loads(f.read_text()) for f in (RUN / "steps").glob("*.json")}
    for step in ("structure", "mc"):  # the stored figure paths point into the original run directory
        fig = tmp_path / "figs" / f"{step}.png"
        fig.parent.mkdir(exist_ok=True)
        shutil.copy(MC_PNG, fig)
        results[step]["figure"] = str(fig)
    out = tmp_path / "run"
    out.mkdir()
    res = step_report(Context(out, {"preset": "accurate"}, results, lambda m: None))
    p = _Page()
    p.feed(Path(res.report_html).read_text())
    assert len(p.tables) >= 2 and ["energy mapping", "-3.553", "-0.588", "-0.007"] in p.tables[1]
    assert len(p.images) == 2 and all(i["src"].startswith("data:image/png;base64,") for i in p.images)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_headless_chromium_screenshot(stored_report, tmp_path):
    """The page renders in a real browser: the screenshot has the page's width, is not blank, and shows the
    tables' grid lines and the dark text of headings (a page of raw Markdown in one <pre> has no grid)."""
    from matplotlib.image import imread

    from wannmag.workflows.report_html import render_report

    tmp, _, _ = stored_report
    page = render_report(tmp / "report.md", tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1100,2200",
           f"--screenshot={shot}", page.as_uri()]
    try:
        subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 90 s")
    assert shot.exists(), "chromium wrote no screenshot"
    img = imread(shot)[..., :3]
    assert img.shape[:2] == (2200, 1100)
    grey = img.mean(axis=2)
    assert grey.std() > 0.05                       # not a blank page
    assert (grey < 0.3).mean() > 0.002             # dark text
    # table borders (#d0d7de ≈ 0.81–0.87 grey) form long horizontal runs: rows where most pixels of a wide
    # stretch have that colour
    border = (np.abs(img - np.array([0xd0, 0xd7, 0xde]) / 255).max(axis=2) < 0.03)
    assert (border.sum(axis=1) > 200).sum() >= 3


def test_a_pipe_inside_a_table_cell_stays_in_its_cell(tmp_path):
    """The superexchange status 'out of range (max |t_pd|/Δ = …)' in the report's route table split the row into
    extra columns; run._cell escapes it and the rendered row has exactly the table's four cells."""
    import re
    from html import unescape as html_unescape

    from wannmag.workflows.report_html import markdown_to_html
    from wannmag.workflows.run import _cell

    status = "out of range (max |t_pd|/Δ = 0.97 > 0.5)"
    md = f"| route | J1 | J2 | J3 |\n|---|---|---|---|\n| superexchange | no J: {_cell(status)} | | |\n"
    html = markdown_to_html(md, tmp_path).replace("\n", "")
    row = re.findall(r"<tr>(.*?)</tr>", html)[-1]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert len(cells) == 4 and html_unescape(cells[1]) == f"no J: {status}"
