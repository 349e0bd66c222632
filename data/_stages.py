"""The stage runner of the production data scripts (data/dft/make_reference.py, data/exchange/neel_wannier.py):

    python SCRIPT [WORK] [STAGE ...] [--dry-run]

runs the named stages (default: all, in the script's order) with the work directory WORK, one after the other; a
failing stage prints its traceback and the others still run; at the end the failed stages are listed and the exit
status is 1.  Wall time and finishing time of every finished stage go to WORK/stage_timings.json.  An unknown stage
name is refused before any work (exit 2); ``--dry-run`` prints the plan and starts nothing; ``--help`` prints the
script's docstring.  Also :func:`gzip_copy`, the reproducible gzip copy both scripts ship their Wannier90 files with.
"""

from __future__ import annotations

import argparse
import json
import gzip
import shutil
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable


def gzip_copy(src: Path, dest: Path) -> None:
    """``src`` gzipped to ``dest`` with mtime=0 and no file name in the header: identical content gives identical
    .gz bytes (so a re-run does not change shipped files)."""
    with open(src, "rb") as fi, open(dest, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as fo:
        shutil.copyfileobj(fi, fo)


def run_stages(stages: dict[str, Callable[[Path], object]], doc: str, default_work: str, argv=None) -> int:
    """Parse ``argv`` (module docstring) and run ``stages`` {name: function(work_dir)}; the exit status (0, 1 if a
    stage failed, 2 for an unknown stage)."""
    from wannmag.workflows.dft import gpaw_version, write_json_atomic

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", nargs="?", default=default_work, help=f"work directory (default {default_work})")
    ap.add_argument("stages", nargs="*", metavar="STAGE", help=f"stages to run (default all: {', '.join(stages)})")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, start nothing")
    args = ap.parse_args(argv)
    unknown = [s for s in args.stages if s not in stages]
    if args.work in stages:  # "script.py cri3-mft": a stage given without a work directory
        unknown.append(f"{args.work} (a stage name where the work directory belongs)")
    if unknown:
        print(f"{ap.prog}: error: unknown stage {', '.join(unknown)}; stages: {', '.join(stages)}", file=sys.stderr)
        return 2
    work = Path(args.work)
    todo = args.stages or list(stages)
    if args.dry_run:
        print(f"work directory {work}; stages: {', '.join(todo)} (dry run: nothing started)")
        return 0
    tfile = work / "stage_timings.json"

    timings = json.loads(tfile.read_text()) if tfile.exists() else {}
    failed = []
    for s in todo:
        t = time.time()
        print(f"=== {s} ({datetime.now().isoformat(timespec='seconds')}, gpaw {gpaw_version()})", flush=True)
        try:
            stages[s](work)
        except Exception as exc:  # noqa: BLE001 - keep going with the other stages, report at the end
            traceback.print_exc()
            failed.append(f"{s}: {type(exc).__name__}: {exc}")
            continue
        timings[s] = {"wall_s": round(time.time() - t, 1),
                      "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        work.mkdir(parents=True, exist_ok=True)
        write_json_atomic(tfile, timings)
        print(f"=== {s} done in {time.time() - t:.0f} s", flush=True)
    if failed:
        print("FAILED stages:\n" + "\n".join(failed), flush=True)
        return 1
    return 0
