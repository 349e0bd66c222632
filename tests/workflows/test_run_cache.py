"""Issue 16, item 7: the run caches are keyed by content, not by paths.  The same structure under another name or
in another folder has the same fingerprint (and a run given it reuses every finished step); moving one atom
changes it; a moved run directory (and a moved ``--from`` directory) is reused as it is, with the paths inside its
results following it."""

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_run import FAST, from_dir  # noqa: E402,F401  (the synthetic VASP + Wannier90 directory fixture)

from wannmag.workflows.engine import structure_fingerprint  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CIF = REPO / "data" / "structures" / "CrI3_monolayer.cif"


def test_structure_fingerprint_is_content(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    copy = tmp_path / "elsewhere" / "my_cri3.cif"
    shutil.copy(CIF, copy)
    assert structure_fingerprint(copy) == structure_fingerprint(CIF)
    # POSCAR of the same atoms: the format does not enter either
    from ase.io import read, write

    write(tmp_path / "POSCAR", read(CIF), format="vasp", direct=True)
    assert structure_fingerprint(tmp_path / "POSCAR") == structure_fingerprint(CIF)
    # one coordinate changed by 1e-3 Å (a P1 CIF of the same atoms, atom 0 moved along x): another structure
    atoms = read(CIF)
    write(tmp_path / "p1.cif", atoms)
    assert structure_fingerprint(tmp_path / "p1.cif") == structure_fingerprint(CIF)
    atoms.positions[0, 0] += 1e-3
    write(tmp_path / "moved.cif", atoms)
    assert structure_fingerprint(tmp_path / "moved.cif") != structure_fingerprint(CIF)


def test_same_structure_by_another_path_reuses_the_run(from_dir, tmp_path):  # noqa: F811
    from wannmag.workflows.run import build_workflow

    out = tmp_path / "run"
    build_workflow(from_dir=from_dir, out=out, settings=FAST, log=lambda m: None).run(until="mapping")
    # the same cluster outputs copied to another folder, the structure file renamed: every step is reused
    other = tmp_path / "copied_outputs"
    shutil.copytree(from_dir, other)
    (other / "CrI3_monolayer.cif").rename(other / "renamed.cif")
    logs = []
    res = build_workflow(other / "renamed.cif", from_dir=other, out=out, settings=FAST, log=logs.append) \
        .run(until="mapping")
    assert [m for m in logs if m.startswith("[wannmag run]")] and \
        all("skipped" in m for m in logs if m.startswith("[wannmag run]")), logs
    assert res["mapping"]["J_meV"] == pytest.approx((-2.0, -0.3, 0.1), abs=1e-4)
    # a changed energy file is new content: the dft step and what follows rerun
    xml = other / "Neel" / "vasprun.xml"
    xml.write_text(xml.read_text().replace("<i name=\"e_0_energy\">", "<i name=\"e_0_energy\"> ", 1))
    logs.clear()
    build_workflow(other / "renamed.cif", from_dir=other, out=out, settings=FAST, log=logs.append).run(until="dft")
    assert any(m.startswith("[wannmag run] dft:") and "skipped" not in m for m in logs), logs
    assert any(m.startswith("[wannmag run] structure:") and "skipped" in m for m in logs), logs


def test_moved_run_directory_is_reused(from_dir, tmp_path):  # noqa: F811
    from wannmag.magnetism import SpinModel
    from wannmag.workflows.run import build_workflow

    out = tmp_path / "run"
    first = build_workflow(from_dir=from_dir, out=out, settings=FAST, log=lambda m: None).run(until="model")
    moved = tmp_path / "archive" / "run_moved"
    moved.parent.mkdir()
    shutil.move(str(out), str(moved))
    assert not out.exists()
    logs = []
    res = build_workflow(from_dir=from_dir, out=moved, settings=FAST, log=logs.append).run(until="lswt")
    steps = [m for m in logs if m.startswith("[wannmag run]")]
    assert all("skipped" in m for m in steps if not m.startswith("[wannmag run] lswt")), steps
    assert any(m.startswith("[wannmag run] lswt: finished") for m in steps)  # ran, on the relocated model path
    assert res["model"]["model"] == str((moved / "model" / "model.json").resolve())
    assert SpinModel.load(res["model"]["model"]).n_sites == 2
    assert res["mapping"]["J_meV"] == first["mapping"]["J_meV"]
