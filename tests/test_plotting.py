"""wannmag._plotting.save_figure: the same bytes as matplotlib's own savefig, atomic or not; closing; error lines."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from wannmag._plotting import save_figure  # noqa: E402
from wannmag.errors import WannmagError  # noqa: E402


def _fig():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 2], "o-")
    ax.set_xlabel("T (K)")
    ax.set_title("a title long enough to need a layout")
    return fig


def _reference(dpi, bbox_inches=None, tight=True):
    fig = _fig()
    if tight:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **({} if bbox_inches is None else {"bbox_inches": bbox_inches}))
    plt.close(fig)
    return buf.getvalue()


@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize("dpi,bbox,tight", [(110, None, True), (150, "tight", False)])
def test_same_bytes_as_matplotlib(tmp_path, atomic, dpi, bbox, tight):
    path = tmp_path / "sub" / "f.png"  # parent folder created in both modes
    fig = _fig()
    out = save_figure(fig, path, dpi=dpi, bbox_inches=bbox, tight_layout=tight, atomic=atomic, close=True)
    assert out == path
    assert path.read_bytes() == _reference(dpi, bbox, tight)
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]  # no temporary left behind


def test_tight_layout_changes_the_figure(tmp_path):
    save_figure(_fig(), tmp_path / "a.png", dpi=80, close=True)
    save_figure(_fig(), tmp_path / "b.png", dpi=80, tight_layout=False, close=True)
    assert (tmp_path / "a.png").read_bytes() == _reference(80)
    assert (tmp_path / "b.png").read_bytes() == _reference(80, tight=False)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()


def test_suffixless_path_follows_each_mode(tmp_path):
    save_figure(_fig(), tmp_path / "atomic", dpi=50, close=True)
    save_figure(_fig(), tmp_path / "plain", dpi=50, close=True, atomic=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic", "plain.png"]  # matplotlib appends .png
    assert (tmp_path / "atomic").read_bytes() == (tmp_path / "plain.png").read_bytes()


def test_figure_left_open_unless_asked(tmp_path):
    fig = _fig()
    save_figure(fig, tmp_path / "f.png", dpi=50)
    assert plt.fignum_exists(fig.number)
    plt.close(fig)


def test_user_path_errors_are_one_line(tmp_path):
    fig = _fig()
    with pytest.raises(WannmagError, match=r": is a directory; give a PNG file name$"):
        save_figure(fig, tmp_path, dpi=50, user_path=True, close=True)
    assert not plt.fignum_exists(fig.number)  # closed also when saving failed
    blocker = tmp_path / "file"
    blocker.write_text("x")
    figs = [_fig(), _fig()]
    with pytest.raises(WannmagError, match=r"^.*/file/f\.png: cannot write the figure \(.+\)$"):
        save_figure(figs[0], blocker / "f.png", dpi=50, user_path=True, close=True)
    with pytest.raises(OSError):  # not a user path: the OSError itself
        save_figure(figs[1], blocker / "f.png", dpi=50, close=True)
    assert not any(plt.fignum_exists(f.number) for f in figs)
