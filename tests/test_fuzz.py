"""Fuzz test of the command line (issue 16, item 8): several hundred generated malformed inputs over every sub-command
that reads a file, each run in a forked child of this process with a timeout; every one must either succeed without
NaN/inf in its output or fail with exactly one ``wannmag: error:`` line and exit status 2 — no traceback, no internal
error, no hang, no crash.  Cases and classes: ``tests/fuzz_cases.py``.

Standalone: ``python tests/test_fuzz.py --summary [--workers N] [--keep DIR] [--only SUBCOMMAND]`` prints a table per
sub-command and every remaining failure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_cases as fz  # noqa: E402
import pytest  # noqa: E402

MIN_CASES = 500


def _run(root: Path, workers: int = fz.WORKERS, only: str | None = None, progress=None):
    run = lambda cases: fz.run_cases(cases, workers=workers)  # noqa: E731
    cases = fz.build_cases(root, run=run)
    if only:
        cases = [c for c in cases if c.command == only]
    return cases, fz.run_cases(cases, workers=workers, progress=progress)


def test_fuzzed_inputs_fail_cleanly(tmp_path):
    t0 = time.monotonic()
    cases, outcomes = _run(tmp_path)
    seconds = time.monotonic() - t0
    assert len(cases) >= MIN_CASES
    assert {c.command for c in cases} >= {"structure", "dft", "tb", "exchange map-energies", "exchange mft",
                                          "superexchange", "anisotropy", "mc", "export", "run"}
    # the classification itself: every baseline ran to the end, and most broken inputs were refused
    assert sum(o.cls == fz.OK for o in outcomes if o.case.baseline) == sum(c.baseline for c in cases)
    assert sum(o.cls == fz.CLEAN for o in outcomes) > len(cases) // 2
    failures = [o for o in outcomes if o.failed]
    if failures:
        pytest.fail(f"{len(failures)} of {len(cases)} fuzz cases failed ({seconds:.0f} s):\n" + fz.summary(outcomes),
                    pytrace=False)


def test_classifier_recognises_every_failure_class(tmp_path):
    """The runner must see a traceback, an internal error, a hang, a segfault, NaN output, a noisy error and a
    clean error for what they are (a harness that calls everything clean would pass any code)."""
    import os
    import signal

    cases = []
    for k, (name, argv) in enumerate([
            ("clean", ["structure", str(tmp_path / "missing.cif")]),
            ("argparse", ["mc"]),
            ("ok", ["structure", str(fz.DATA / "structures" / "CrI3_monolayer.cif"), "--shells", "1"]),
            # a real DFT run: the child must not be able to import GPAW (bounded by the timeout if it could)
            ("dft", ["dft", str(fz.DATA / "structures" / "CrI3_monolayer.cif"), "--out", "dft", "--config", "FM"])]):
        d = tmp_path / f"c{k}"
        (d / "out").mkdir(parents=True)
        cases.append(fz.Case(k, name, name, argv, str(d)))
    # a generous timeout: under a loaded machine the dft child needs more than the default 20 s to reach `import gpaw`
    outcomes = fz.run_cases(cases, timeout=90)
    assert [o.cls for o in outcomes] == [fz.CLEAN, fz.CLEAN, fz.OK, "launched-dft"]

    def fake(cid, stderr, status, stdout=""):
        d = tmp_path / f"f{cid}"
        (d / "out").mkdir(parents=True)
        (d / "stderr.txt").write_text(stderr)
        (d / "stdout.txt").write_text(stdout)
        return fz.classify(fz.Case(cid, "x", "x", [], str(d)), status, 0.1).cls

    assert fake(1, "Traceback (most recent call last):\n  File ...\nValueError: x\n", 1) == "traceback"
    assert fake(2, "wannmag: error: internal error (KeyError: 'a'); please report\n", 2) == "internal-error"
    assert fake(3, "", None) == "hang"
    assert fake(4, "", -signal.SIGSEGV) == "signal-SIGSEGV"
    assert fake(5, "", 0, stdout="J1 = +nan meV\n") == "nan-output"
    assert fake(6, "", 0, stdout="Tc = inf K\n") == "nan-output"
    assert fake(7, "", 0, stdout="information, infinite care, nano\n") == fz.OK
    assert fake(8, "x.py:3: RuntimeWarning: invalid value\nwannmag: error: f: bad\n", 2) == "stderr-not-one-line"
    assert fake(9, "wannmag: error: f: bad\n", 1) == "exit-1"
    assert fake(10, "wannmag: error: f: bad\n", 2) == fz.CLEAN
    d = tmp_path / "f11"
    (d / "out").mkdir(parents=True)
    (d / "stderr.txt").write_text("")
    (d / "stdout.txt").write_text("J1 = 1.0 meV\n")
    must = fz.Case(11, "x", "--U nan", [], str(d), must_fail=True)
    assert fz.classify(must, 0, 0.1).cls == "accepted-bad-input"
    assert os.getpid() > 0


if __name__ == "__main__":
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description="run the CLI fuzz cases and print a summary table")
    ap.add_argument("--summary", action="store_true", help="print the table per sub-command and every failure")
    ap.add_argument("--workers", type=int, default=fz.WORKERS)
    ap.add_argument("--only", help="only the cases of this sub-command (e.g. 'exchange mft')")
    ap.add_argument("--keep", metavar="DIR", help="write the cases into DIR and keep them (default: a temp dir)")
    opts = ap.parse_args()
    root = Path(opts.keep) if opts.keep else Path(tempfile.mkdtemp(prefix="wannmag_fuzz_"))
    t0 = time.monotonic()
    done = []

    def tick(o):
        done.append(o)
        if len(done) % 50 == 0:
            print(f"  {len(done)} cases, {time.monotonic() - t0:.0f} s", file=sys.stderr)

    cases, outcomes = _run(root, workers=opts.workers, only=opts.only, progress=tick)
    print(fz.summary(outcomes))
    slow = sorted(outcomes, key=lambda o: -o.seconds)[:5]
    print(f"\n{len(cases)} cases in {time.monotonic() - t0:.1f} s with {opts.workers} workers; slowest: "
          + ", ".join(f"c{o.case.cid:04d} {o.case.command} {o.seconds:.1f} s" for o in slow))
    if opts.keep:
        import json

        (root / "outcomes.json").write_text(json.dumps(
            [{"case": f"c{o.case.cid:04d}", "command": o.case.command, "class": o.cls, "seconds": round(o.seconds, 2),
              "trigger": o.case.trigger, "argv": o.case.argv, "detail": o.detail} for o in outcomes], indent=1))
        print(f"cases and outcomes.json in {root}")
    if not opts.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if any(o.failed for o in outcomes) else 0)
