"""Copy a finished `wannmag sweep` into data/sweeps/ (issue 21): OUT/sweep.json → data/sweeps/<NAME>.json with paths
made relative to the repository and the command, date and wall time added; OUT/sweep.png → docs/img/<NAME>_sweep.png.

    python data/sweeps/ship.py OUT NAME --command "wannmag sweep ..." --wall-s 4243
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag._atomic import atomic_write_json  # noqa: E402


def _rel(x):
    if isinstance(x, str) and x.startswith(str(ROOT) + "/"):
        return x[len(str(ROOT)) + 1:]
    if isinstance(x, dict):
        return {k: _rel(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rel(v) for v in x]
    return x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("name")
    ap.add_argument("--command", required=True)
    ap.add_argument("--wall-s", type=float, required=True)
    a = ap.parse_args(argv)
    src = Path(a.out)
    doc = _rel(json.loads((src / "sweep.json").read_text()))
    bad = [p["label"] for p in doc["points"] if p.get("status") != "done"]
    if bad:
        print(f"wannmag: error: {src / 'sweep.json'}: points not done: {', '.join(bad)}", file=sys.stderr)
        return 2
    doc["provenance"] = {"command": a.command, "date": datetime.date.today().isoformat(), "wall_s": a.wall_s,
                         "shipped_by": "python data/sweeps/ship.py", "machine": "2 shared cores (CI-class)"}
    atomic_write_json(ROOT / "data" / "sweeps" / f"{a.name}.json", doc)
    shutil.copyfile(src / "sweep.png", ROOT / "docs" / "img" / f"{a.name}_sweep.png")
    print(f"data/sweeps/{a.name}.json, docs/img/{a.name}_sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
