"""run_dft: parameters, k-mesh scaling, resume logic and the moment check (with a fake calculator)."""

import json

import numpy as np
import pytest

from wannmag.errors import WannmagError
from wannmag.structures import (cri3_monolayer, honeycomb_configuration, rectangular_supercell, vacancy_supercell,
                                vps3_monolayer)
from wannmag.workflows.dft import (DFTError, DFTRecord, band_gaps, check_moments, dft_parameters, kpoint_mesh,
                                   read_summary, run_dft)


def test_kpoint_mesh_scales_with_supercell():
    cri3 = cri3_monolayer()
    slab = (True, True, False)
    assert kpoint_mesh(cri3, 5.5, slab) == (6, 6, 1)
    rect = honeycomb_configuration(cri3, "zigzag").atoms
    assert kpoint_mesh(rect, 5.5, slab) == (5, 3, 1)
    big = honeycomb_configuration(cri3, "Neel", supercell=(2, 2, 1)).atoms
    assert kpoint_mesh(big, 5.5, slab) == (3, 3, 1)
    assert kpoint_mesh(vps3_monolayer(), 5.5, slab) == (7, 7, 1)
    # constant density: spacing |b_i| / n_i never exceeds 1/density
    for atoms in (cri3, rect, big):
        rec = 2 * np.pi * np.linalg.inv(atoms.cell.array).T
        mesh = kpoint_mesh(atoms, 5.5, slab)
        for i in range(2):
            assert np.linalg.norm(rec[i]) / mesh[i] <= 1 / 5.5 * 1.02
    # 3D: the third direction is sampled too
    assert kpoint_mesh(cri3, 5.5, (True, True, True))[2] >= 1
    with pytest.raises(DFTError):
        kpoint_mesh(cri3, 0.0)


def test_parameters_follow_supercell_and_preset():
    cri3 = cri3_monolayer()
    p_fm = dft_parameters(honeycomb_configuration(cri3, "FM"), preset="accurate")
    p_zz = dft_parameters(honeycomb_configuration(cri3, "zigzag"), preset="accurate")
    assert p_fm["kpts"] == [6, 6, 1] and p_zz["kpts"] == [5, 3, 1]
    assert p_fm["mode"] == "pw" and p_fm["ecut"] == 450.0 and p_fm["U"] == {"Cr": 3.0}
    assert dft_parameters(honeycomb_configuration(cri3, "FM"), preset="fast")["mode"] == "lcao"
    assert dft_parameters(honeycomb_configuration(cri3, "FM"), U={"Cr": 2.0})["U"] == {"Cr": 2.0}
    assert dft_parameters(honeycomb_configuration(cri3, "FM"), U=0.0)["U"] == {}
    with pytest.raises(DFTError, match="unknown preset"):
        dft_parameters(honeycomb_configuration(cri3, "FM"), preset="medium")
    with pytest.raises(DFTError, match="ecut"):
        dft_parameters(honeycomb_configuration(cri3, "FM"), preset="fast", ecut=400)
    with pytest.raises(DFTError, match="U must be"):
        dft_parameters(honeycomb_configuration(cri3, "FM"), U="big")


def test_run_dft_record_and_resume(tmp_path, fake_gpaw, capsys):
    cri3 = cri3_monolayer()
    rec = run_dft(cri3, "Neel", preset="fast", workdir=tmp_path)
    assert fake_gpaw["cls"].instances == 1
    assert isinstance(rec, DFTRecord)
    assert rec.config == "Neel" and rec.pattern == [1, -1] and rec.n_sites == 2
    assert rec.energy_per_ion == pytest.approx(rec.energy / 2)
    assert rec.site_moments == pytest.approx([3.15, -3.15])
    assert rec.gaps == [pytest.approx(1.9), pytest.approx(2.9)]
    assert rec.code_version.startswith("gpaw") and rec.U == {"Cr": 3.0}
    assert "gpaw.txt" in capsys.readouterr().out  # progress: the log path is printed
    run_dir = tmp_path / "Neel"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["energy"] == rec.energy and summary["parameters"]["kpts"] == [6, 6, 1]
    assert (run_dir / "Neel.gpw").exists()
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave no temporaries
    # resume: the finished configuration is read back, not recomputed
    again = run_dft(cri3, "Neel", preset="fast", workdir=tmp_path)
    assert fake_gpaw["cls"].instances == 1
    assert again.energy == rec.energy and again.as_dict() == rec.as_dict()
    assert read_summary(run_dir).energy == rec.energy
    # a different calculation in the same directory is refused in one line
    with pytest.raises(DFTError, match="different calculation") as exc:
        run_dft(cri3, "Neel", preset="fast", U=4.0, workdir=tmp_path)
    assert "\n" not in str(exc.value) and "U" in str(exc.value)
    assert fake_gpaw["cls"].instances == 1


def test_crash_before_summary_is_recomputed(tmp_path, fake_gpaw):
    cri3 = cri3_monolayer()
    (tmp_path / "FM").mkdir()
    (tmp_path / "FM" / "gpaw.txt").write_text("half a log of a run that crashed\n")
    rec = run_dft(cri3, "FM", workdir=tmp_path)
    assert fake_gpaw["cls"].instances == 1 and rec.config == "FM"


def test_configuration_objects_and_nm(tmp_path, fake_gpaw):
    cri3 = cri3_monolayer()
    conf = vacancy_supercell(cri3, supercell=(2, 2, 1), sites=[0])
    rec = run_dft(None, conf, workdir=tmp_path)
    assert rec.n_sites == 7 and rec.config == "Neel+vac" and rec.supercell == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]
    assert rec.kpts == [3, 3, 1]
    nm = run_dft(cri3, "NM", workdir=tmp_path)
    assert nm.parameters["spinpol"] is False and nm.pattern == [0, 0] and len(nm.gaps) == 1
    rect = run_dft(cri3, "stripy", workdir=tmp_path)
    assert rect.n_sites == 4 and rect.kpts == [5, 3, 1]
    assert np.allclose(rect.supercell, rectangular_supercell(cri3))


def test_flipped_and_collapsed_moments_warn(tmp_path, fake_gpaw, capsys):
    fake_gpaw["scale"] = [1.0, -1.0, 1, 1, 1, 1, 1, 1]  # site 1 flips
    rec = run_dft(cri3_monolayer(), "Neel", workdir=tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "flipped" in err[0] and err[0].startswith("wannmag: warning:")
    assert len(rec.warnings) == 1 and "site 1" in rec.warnings[0]
    fake_gpaw["scale"] = [0.05, 1.0, 1, 1, 1, 1, 1, 1]
    rec = run_dft(cri3_monolayer(), "FM", workdir=tmp_path)
    assert len(rec.warnings) == 1 and "collapsed" in rec.warnings[0]


def test_check_moments_and_gaps_units():
    assert check_moments([3.0, -3.0], [1, -1], [1.5, 1.5]) == []
    assert "flipped" in check_moments([3.0, 3.0], [1, -1], [1.5, 1.5])[0]
    assert "collapsed" in check_moments([0.2, -3.0], [1, -1], [1.5, 1.5])[0]
    eigs = np.array([[[-1.0, 0.5], [-0.8, 0.7]], [[-2.0, 2.0], [-2.1, 2.2]]])
    gaps, gap = band_gaps(eigs, 0.0)
    assert gaps == pytest.approx([1.3, 4.0]) and gap == pytest.approx(1.3)
    gaps, gap = band_gaps(np.array([[[-1.0, 0.1], [-0.1, 1.0]]]), 0.0)
    assert gaps == [0.0] or gaps[0] == pytest.approx(0.0) or gaps[0] > 0  # metal or tiny gap, never negative
    assert gap >= 0


def test_errors_are_wannmag_errors(tmp_path):
    with pytest.raises(WannmagError):
        run_dft(cri3_monolayer(), "spiral", workdir=tmp_path)
    with pytest.raises(DFTError, match="no such file"):
        read_summary(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "summary.json").write_text("{ not json")
    with pytest.raises(DFTError, match="unreadable summary"):
        read_summary(tmp_path / "bad")


def test_scf_controls_recorded_only_when_given_and_checked():
    """Smearing, mixer and maxiter (neutral vacancy cell, issue 18): default runs keep their identity; the
    options reach GPAW's keywords; bad values are one DFTError line."""
    import wannmag.workflows.dft as dft

    conf = honeycomb_configuration(vps3_monolayer(), "Neel")
    base = dft_parameters(conf)
    assert "mixer" not in base and "maxiter" not in base and base["smearing"] == 0.05
    p = dft_parameters(conf, smearing=0.1, mixer={"beta": 0.02, "nmaxold": 8, "weight": 100.0}, maxiter=300)
    assert p["mixer"] == {"beta": 0.02, "nmaxold": 8, "weight": 100.0} and p["maxiter"] == 300 and p["smearing"] == 0.1
    import gpaw

    def gpaw_keywords(params) -> dict:
        """The keywords _make_calculator hands to gpaw.GPAW for ``params`` (GPAW itself not started)."""
        seen = {}

        class Catch:
            def __init__(self, **kw):
                seen.update(kw)

        orig = gpaw.GPAW
        gpaw.GPAW = Catch
        try:
            dft._make_calculator(params, "x.txt")
        finally:
            gpaw.GPAW = orig
        return seen

    seen = gpaw_keywords(p)
    assert seen["mixer"] == p["mixer"] and seen["maxiter"] == 300 and seen["occupations"]["width"] == 0.1
    # the density criterion: the package's 1e-5 unless given (then recorded and passed to GPAW)
    assert base["convergence"]["density"] == 1e-5
    q = dft_parameters(conf, density_tol=1e-4)
    assert q["convergence"]["density"] == 1e-4 and q["convergence"]["energy"] == base["convergence"]["energy"]
    assert q != base  # a different run identity
    assert gpaw_keywords(q)["convergence"]["density"] == 1e-4
    # fixed total moment: recorded only when set, passed to GPAW's Fermi-Dirac occupations
    assert "fixmagmom" not in base and "fixmagmom" not in gpaw_keywords(base)["occupations"]
    f = dft_parameters(conf, fixmagmom=True)
    assert f["fixmagmom"] is True and f != base
    assert gpaw_keywords(f)["occupations"] == {"name": "fermi-dirac", "width": 0.05, "fixmagmom": True}
    for bad in ({"mixer": {"beta": 2.0}}, {"mixer": {"alpha": 1}}, {"maxiter": 0}, {"maxiter": 2.5},
                {"smearing": 0.0}, {"smearing": float("nan")}, {"density_tol": 0.0}, {"density_tol": 0.5},
                {"density_tol": float("nan")}, {"density_tol": True}, {"fixmagmom": 1}):
        with pytest.raises(DFTError):
            dft_parameters(conf, **bad)


def test_fixed_moment_runs_have_two_fermi_levels():
    """GPAW with fixmagmom refuses get_fermi_level ("There are two Fermi-levels!"): run_dft must take the two
    per-spin levels instead of crashing after a converged SCF, and cut each channel at its own level."""
    from wannmag.workflows.dft import band_gaps, fermi_levels

    class Fixed:
        def get_fermi_level(self):
            raise ValueError("There are two Fermi-levels!")

        def get_fermi_levels(self):
            return np.array([0.5, -0.2])

    class Free:
        def get_fermi_level(self):
            return 0.1

    assert fermi_levels(Fixed()) == (None, [0.5, -0.2])
    assert fermi_levels(Free()) == (0.1, None)
    from wannmag.workflows.dft import common_gap

    eigs = np.array([[[-1.0, 0.0, 1.0]], [[-1.0, -0.5, 0.3]]])  # [spin, k, band]
    gaps, gap = band_gaps(eigs, [0.5, -0.2])
    assert gaps == [1.0, 0.8] and gap == 0.3  # highest occupied 0.0 (up), lowest empty 0.3 (down)
    assert common_gap(eigs, [0.5, -0.2]) == 0.3
    # the up channel filled above the down channel's empty state: overlap, the constraint is active
    assert common_gap(eigs, [1.5, -0.2]) == pytest.approx(0.3 - 1.0)
    assert band_gaps(eigs, [1.5, -0.2])[1] == 0.0
    gaps1, gap1 = band_gaps(eigs, 0.1)  # one common level: unchanged behaviour
    assert gaps1 == [1.0, 0.8] and gap1 == 0.3
    with pytest.raises(ValueError):
        band_gaps(eigs, [0.1, 0.2, 0.3])
