"""Helpers shared by the tight-binding tests (wannierberri reference interpolation, random k)."""

import numpy as np

from wannmag.tightbinding.w90 import _quiet


def wb_interpolation(system, k):
    """wannierberri's own interpolation at reduced k-points: (H(k), energies)."""
    with _quiet():
        from wannierberri.data_K import get_data_k_class_from_system
        from wannierberri.grid import Path

        cls = get_data_k_class_from_system(system)
        data = cls(system, grid=Path(system=system, k_list=k), k_list=k)
        return np.array(data.HH_K), np.array(data.E_K)


def wb_system_hr(seed, model):
    with _quiet():
        from wannierberri.system import System_R

        return System_R.from_hr_file(str(seed), wannier_centers_cart=model.centres, real_lattice=model.lattice)


def random_k(n, seed=0, two_d=True):
    k = np.random.default_rng(seed).random((n, 3)) - 0.5
    if two_d:
        k[:, 2] = 0.0
    return k
