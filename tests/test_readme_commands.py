"""Every ``wannmag ...`` line of README.md's fenced code blocks runs as written (README can no longer drift).

Each line runs through the CLI (``wannmag.cli.main``, in this process: the imports are paid once) with the working
directory in a temporary copy of the repository's ``data/`` and ``examples/`` (so outputs under ``out/`` never touch
the checkout).  A line whose trailing comment starts with ``needs`` (``# needs DFT``, ``# needs your DFT outputs``)
is skipped with that comment as the reason.  Monte Carlo lines get options appended that shrink them (later
options win in argparse: smaller lattices, fewer sweeps and replicas, no window extension) — the only change to a
line; ``-m slow`` runs the Monte Carlo lines exactly as written too.

What is checked: exit status 0, no ``wannmag: error`` line, and every output a line names (``--plot``, ``--out``,
the target of ``export``) exists afterwards.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: options appended to a sub-command's line in the default (fast) run; argparse keeps the last value of an option
SHRINK = {
    "mc": ["--sizes", "4", "6", "--replicas", "6", "--sweeps", "300", "--therm", "100", "--realisations", "2",
           "--max-extensions", "0", "--checkpoint-every", "0", "--quiet"],
}


def readme_commands(text: str | None = None) -> list[tuple[str, str]]:
    """(command, trailing comment) of every line starting with ``wannmag`` inside a fenced code block of README
    (backslash continuations joined)."""
    text = README.read_text() if text is None else text
    out, inside, pending = [], False, ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        if not line.startswith("wannmag ") and line != "wannmag":
            continue
        parts = re.split(r"\s+#\s*", line, maxsplit=1)
        out.append((parts[0].strip(), parts[1].strip() if len(parts) > 1 else ""))
    return out


COMMANDS = readme_commands()


def test_readme_has_the_command_lines():
    """The parser finds the README's command lines (a README rewrite that hides them from this test fails here)."""
    subs = {shlex.split(c)[1] for c, _ in COMMANDS if len(shlex.split(c)) > 1}
    assert {"structure", "tb", "exchange", "superexchange", "anisotropy", "mc", "export", "run", "dft"} <= subs
    assert len(COMMANDS) >= 20
    assert sum(1 for _, note in COMMANDS if note.startswith("needs")) >= 5


def test_parser_joins_continuations_and_splits_comments():
    text = "```bash\nwannmag mc a.json \\\n    --sizes 4 6   # needs DFT: slow\nnot wannmag\n```\nwannmag outside\n"
    assert readme_commands(text) == [("wannmag mc a.json --sizes 4 6", "needs DFT: slow")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A temporary copy of what the README's lines read: data/ and examples/."""
    d = tmp_path_factory.mktemp("readme")
    for sub in ("data", "examples"):
        shutil.copytree(ROOT / sub, d / sub)
    return d


def _outputs(argv: list[str]) -> list[str]:
    """The paths a command line promises to write."""
    out = [argv[k + 1] for k, a in enumerate(argv[:-1]) if a in ("--plot", "--out")]
    if len(argv) > 3 and argv[1] == "export":
        out.append(argv[3])
    if argv[1] == "run":  # the run directory of --status need not exist
        out = []
    return out


def _written(workdir: Path, path: str) -> bool:
    """``path`` exists, or files named after it (``--plot OUT.png`` of ``exchange mft`` writes OUT_map.png, ...)."""
    p = workdir / path
    return p.exists() or any(p.parent.glob(p.stem + "_*" + p.suffix))


def _run(argv: list[str], workdir, monkeypatch, capsys) -> tuple[int, str, str]:
    from wannmag.cli import main

    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        status = main(argv[1:])
    except SystemExit as exc:  # --help
        status = exc.code or 0
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def _check(command: str, argv: list[str], workdir, monkeypatch, capsys) -> None:
    status, out, err = _run(argv, workdir, monkeypatch, capsys)
    assert status == 0, f"{command}\nexit {status}\n{err[-2000:]}"
    assert "wannmag: error" not in err, f"{command}\n{err[-2000:]}"
    assert out.strip(), f"{command}: printed nothing"
    for path in _outputs(argv):
        assert _written(workdir, path), f"{command}: {path} was not written"


@pytest.mark.parametrize("command,note", COMMANDS, ids=[c[:60] for c, _ in COMMANDS])
def test_readme_command(command, note, workdir, monkeypatch, capsys):
    if note.startswith("needs"):
        pytest.skip(f"README: {note}")
    argv = shlex.split(command)
    if len(argv) > 1 and argv[1] in SHRINK:
        argv = argv + SHRINK[argv[1]]
    _check(command, argv, workdir, monkeypatch, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c, n in COMMANDS if not n.startswith("needs")
                                     and len(shlex.split(c)) > 1 and shlex.split(c)[1] in SHRINK])
def test_readme_command_as_written(command, workdir, monkeypatch, capsys):
    """The lines the default run shrinks, exactly as written (minutes of Monte Carlo)."""
    _check(command, shlex.split(command), workdir, monkeypatch, capsys)
