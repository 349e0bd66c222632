"""Before/after PNGs of the figures fixed in issue 20 (item 5), from stored data only (no DFT, no Monte Carlo run).

    python docs/img/fix_figures.py                 # after: the plot modules of the working tree
    python docs/img/fix_figures.py --before 37596c3  # before: the plot modules of that commit (read with git show)

Writes docs/img/fix_<name>_{before,after}.png for
  crystal_field  local-frame d levels of CrI3 (data/dft/CrI3 Wannier pair, wannmag tb --plot's figure)
  bands          CrI3 collinear Wannier bands over the DFT eigenvalues of both spins (data/dft/CrI3)
  channels       superexchange channels of the 1NN bond of CrI3 and VPS3 (data/dft/*/..._nm, U = 3 eV), with the
                 energy-mapping J1 of each (data/runs/CrI3_accurate, data/mc/VPS3_fast_spin_model.json) and the
                 force-theorem J1 of CrI3
  mc_tc          Monte Carlo curves of VPS3 (data/mc/VPS3_cluster_fss_64.json), as `wannmag run` titles them
  mc_edge        the same runs cut to T <= 193 K (a window that does not contain the Binder crossing)
Convention of every J: H = Σ_{i<j} S_i·J_ij·S_j, each bond once, |S| = S, J > 0 AF, meV; T in K; energies eV.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "img"
MODULES = {"tb": "wannmag/tightbinding/plot.py", "sx": "wannmag/magnetism/superexchange/plot.py",
           "mc": "wannmag/magnetism/montecarlo/plot.py"}


def _load(key: str, commit: str | None):
    """The plot module ``key`` of the working tree, or its source at ``commit`` executed in the same package."""
    import importlib

    name = MODULES[key][:-3].replace("/", ".")
    if commit is None:
        return importlib.import_module(name)
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{MODULES[key]}"], check=True,
                         capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(name + "_at_" + commit, loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = name.rsplit(".", 1)[0]
    exec(compile(src, f"{commit}:{MODULES[key]}", "exec"), mod.__dict__)  # noqa: S102 - our own history
    return mod


def _curves(runs: list[dict], tmax: float | None = None) -> dict:
    out = {}
    for r in runs:
        T = np.asarray(r["temperatures_K"], float)
        keep = T <= (tmax if tmax is not None else np.inf)
        c = {"T": T[keep], "n_sites": r["n_sites"]}
        for k, v in r["observables"].items():
            c[k] = (np.asarray(v["value"], float)[keep], np.asarray(v["error"], float)[keep])
        out["x".join(map(str, r["size"]))] = c
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", metavar="COMMIT", help="draw with the plot modules of this commit (suffix _before)")
    ap.add_argument("--only", nargs="*", default=None, help="figure names to draw (default: all)")
    args = ap.parse_args(argv)
    tag = "before" if args.before else "after"
    want = set(args.only or ["crystal_field", "bands", "channels", "mc_tc", "mc_edge"])
    tb, sx, mc = (_load(k, args.before) for k in ("tb", "sx", "mc"))
    written = []
    if want & {"crystal_field", "bands"}:
        from wannmag.commands.tb import _dft_bands
        from wannmag.tightbinding import read_w90
        from wannmag.tightbinding.report import tb_report

        model = read_w90(str(REPO / "data/dft/CrI3/CrI3"), kind="collinear")
        rep = tb_report(model, U=3.0)
        if "crystal_field" in want:
            written.append(OUT / f"fix_crystal_field_{tag}.png")
            tb.plot_crystal_field(rep.crystal_fields, written[-1])
        if "bands" in want:
            written.append(OUT / f"fix_bands_{tag}.png")
            tb.plot_bands(model, written[-1], fermi_energy=rep.classification.edges.fermi_energy,
                          dft=_dft_bands(model), emin=-5.5, emax=4.5)
    if "channels" in want:
        from wannmag.magnetism.superexchange import superexchange
        from wannmag.tightbinding import read_w90

        j1 = {"CrI3": json.loads((REPO / "data/runs/CrI3_accurate/steps/mapping.json").read_text())["J_meV"][0],
              "VPS3": json.loads((REPO / "data/mc/VPS3_fast_spin_model.json").read_text())["meta"]["J_meV"][0]}
        mft = json.loads((REPO / "data/runs/CrI3_accurate/steps/mft.json").read_text())["shells"][0]["J"]
        bonds = {}
        for name in ("CrI3", "VPS3"):
            comp = {"energy mapping": j1[name]} if name in j1 else {}
            if name == "CrI3":
                comp["force theorem"] = mft
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = read_w90(str(REPO / f"data/dft/{name}/{name}_nm"), kind="single")
                bonds[name] = superexchange(m, shells=(1,), U=3.0, comparisons={1: comp}).bonds[0]
        written.append(OUT / f"fix_channels_{tag}.png")
        sx.plot_channels(bonds, written[-1])
    if want & {"mc_tc", "mc_edge"}:
        from wannmag.magnetism.montecarlo.tc import analyse_sizes

        data = json.loads((REPO / "data/mc/VPS3_cluster_fss_64.json").read_text())
        for name, tmax in (("mc_tc", None), ("mc_edge", 193.5)):
            if name not in want:
                continue
            curves = _curves(data["runs"], tmax)
            tcr = analyse_sizes(curves)
            d = tcr.as_dict(with_runs=False)
            written.append(OUT / f"fix_{name}_{tag}.png")
            kw = {} if args.before else {"edge": tcr.side}
            if name == "mc_tc":  # as `wannmag run` (step_mc) draws it: bracketed crossing, title of the workflow
                mc.plot_curves(curves, written[-1], tc=d.get("tc_K"), tc_error=d.get("tc_error_K"),
                               title=f"VPS3: Monte Carlo ({d.get('method')})", **kw)
            else:  # as `wannmag mc` (plot_tc) draws it: no crossing inside the window, no Tc marked
                mc.plot_curves(curves, written[-1], None, None, tcr.headline("Tc"), **kw)
    from PIL import Image

    for p in written:  # small files: at most 1100 px wide, 64-colour palette
        im = Image.open(p).convert("RGB")
        if im.width > 1100:
            im = im.resize((1100, round(im.height * 1100 / im.width)), Image.LANCZOS)
        im.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(p, optimize=True)
        print(p.relative_to(REPO), f"{p.stat().st_size // 1024} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
