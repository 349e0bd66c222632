"""No out-of-range perturbative sum is shown or stored as a J (issue 17, item 5).

The channel formulas are terms of an expansion in t/Δ whose radius of convergence is 1/2 (two-level problem,
:data:`wannmag.magnetism.superexchange.EXPANSION_LIMIT`).  Beyond it the bond's J is None with a status naming the
parameter, and the CLI table, JSON, plot and the workflow report say so; inside the range nothing changes.
J in meV, internal convention H = Σ_{i<j} J S_i·S_j, J > 0 AF."""

import json
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.magnetism.superexchange import EXPANSION_LIMIT, SuperexchangeError, superexchange
from wannmag.magnetism.superexchange.synthetic import cri3_like_model, vps3_like_model

DATA = Path(__file__).resolve().parents[2] / "data" / "dft"


def _need(name):
    if not any((DATA / name).glob(f"{name}_nm_hr.dat*")):
        pytest.skip(f"data/dft/{name} not present")


def test_two_level_radius_of_convergence_is_the_bound():
    """The bound is the radius of convergence of E(t) = Δ/2 − √(Δ²/4 + t²): the partial sums of its Taylor series
    in t converge at t/Δ = 0.45 and diverge at 0.55 (independent evaluation: the closed form)."""
    from math import comb

    def partial(x, n):   # E/Δ = ½ − ½√(1 + 4x²) = −Σ_k C(1/2, k) (4x²)^k / 2, k ≥ 1
        c, out = 1.0, 0.0
        for k in range(1, n + 1):
            c *= (0.5 - (k - 1)) / k
            out -= 0.5 * c * (4 * x * x) ** k
        return out

    exact = lambda x: 0.5 - 0.5 * np.sqrt(1 + 4 * x * x)
    assert abs(partial(0.45, 200) - exact(0.45)) < 1e-6
    assert abs(partial(0.55, 200) - exact(0.55)) > 1e3
    assert EXPANSION_LIMIT == 0.5
    del comb


def test_inside_the_range_nothing_changes():
    b = superexchange(vps3_like_model(), shells=(1,)).bonds[0]
    assert b.in_range and b.status.startswith("ok")
    assert b.J == pytest.approx(sum(b.summary.values()), rel=1e-14) and b.J == pytest.approx(15.9995, abs=1e-3)
    d = b.as_dict()
    assert d["J_meV"] == pytest.approx(b.J, abs=1e-6) and "channels_by_category_meV" in d


def test_out_of_range_bond_has_no_j_anywhere(tmp_path):
    """Hoppings scaled up until max |t_pd|/Δ > 1/2: J None, status, JSON, table, spin model refused."""
    res = superexchange(cri3_like_model(pds=-1.6, pdp=0.7), shells=(1,))
    b = res.bonds[0]
    assert b.expansion > EXPANSION_LIMIT and not b.in_range
    assert b.J is None and b.status.startswith("out of range (max |t_pd|/Δ = ")
    d = b.as_dict()
    assert d["J_meV"] is None and d["status"] == b.status
    assert "channels_by_category_meV" not in d and "formal_terms_by_category_meV" in d
    assert all("J_meV" not in c and "formal_term_meV" in c for c in d["channels"])
    sh = res.shell_summary()[0]
    assert sh["J_meV"] is None and sh["status"].startswith("out of range") and "channels_meV" not in sh
    t = res.table()
    assert "J (superexchange, sum): none — out of range" in t and "J = " not in t.split("shell means")[1]
    with pytest.raises(SuperexchangeError, match="out of range"):
        res.to_spin_model()


@pytest.fixture(scope="module")
def cri3_cli(tmp_path_factory):
    _need("CrI3")
    tmp = tmp_path_factory.mktemp("sx")
    png = tmp / "ch.png"
    return png


def test_real_cri3_cli_text_json_and_plot(cri3_cli, capsys):
    """`wannmag superexchange data/dft/CrI3 --bond 1`: today's code printed 'J (superexchange, sum) = −111.5 meV'."""
    assert main(["superexchange", str(DATA / "CrI3"), "--bond", "1", "--plot", str(cri3_cli)]) == 0
    text = capsys.readouterr().out
    assert "-111" not in text and "J (superexchange, sum) = " not in text
    assert "J (superexchange, sum): none — out of range (max |t_pd|/Δ = 2.8" in text
    assert "formal terms by category (meV, not J)" in text
    assert cri3_cli.stat().st_size > 10_000
    assert main(["superexchange", str(DATA / "CrI3"), "--bond", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for b in d["bonds"]:
        assert b["J_meV"] is None and b["status"].startswith("out of range (max |t_pd|/Δ = 2.")
    assert d["shells"][0]["J_meV"] is None


def test_plot_labels_formal_terms(tmp_path):
    """The channel plot of an out-of-range bond has no total bar and says 'formal perturbative terms (not J)'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wannmag.magnetism.superexchange import plot_channels

    b = superexchange(cri3_like_model(pds=-1.6, pdp=0.7), shells=(1,)).bonds[0]
    seen = {}
    orig = plt.Figure.savefig

    def spy(fig, *a, **k):
        ax = fig.axes[0]
        seen["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["texts"] = [t.get_text() for t in ax.texts]
        seen["title"] = ax.get_title()
        seen["n_bars"] = len(ax.patches)
        return orig(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        plot_channels({"big t": b}, tmp_path / "p.png")
    finally:
        plt.Figure.savefig = orig
    assert any("formal perturbative terms (not J)" in s for s in seen["labels"])
    assert any(t.startswith("no J:") for t in seen["texts"]) and "out of range" in seen["title"]
    assert seen["n_bars"] == 6                          # the six channel categories, no total bar


def test_workflow_report_line_says_out_of_range(tmp_path):
    """The report's route table: no number for an out-of-range superexchange J1 (step_report itself, on the stored
    accurate CrI3 run with the superexchange step of the CrI3-like model, whose 1NN is out of range)."""
    import warnings

    from wannmag.workflows.engine import Context
    from wannmag.workflows.results import SuperexchangeStep
    from wannmag.workflows.run import step_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = superexchange(cri3_like_model(), shells=(1,))
    s1 = res.shell_summary()[0]
    sx = SuperexchangeStep(result=res, table=res.table(), J1_meV=s1["J_meV"], status=s1["status"],
                           terms_meV=s1["formal_terms_meV"], model_source="test", figure="").as_dict()
    assert sx["J1_meV"] is None and "formal_terms_meV" in sx and "channels_meV" not in sx
    run = Path(__file__).resolve().parents[2] / "data" / "runs" / "CrI3_accurate" / "steps"
    results = {f.stem: json.loads(f.read_text()) for f in run.glob("*.json")}
    (tmp_path / "run").mkdir()
    step_report(Context(tmp_path / "run", {"preset": "accurate"}, {**results, "superexchange": sx}, lambda m: None))
    md = (tmp_path / "run" / "report.md").read_text()
    row = [x for x in md.splitlines() if x.startswith("| superexchange channels")]
    assert row == [f"| superexchange channels (1NN, Kanamori perturbation theory) | no J: "
                   f"{s1['status'].replace('|', chr(92) + '|')} | | |"]  # '|' in the status escaped (run._cell)
    assert "out of range (max \\|t_pd\\|/Δ = 0.53 > 0.5)" in row[0]
