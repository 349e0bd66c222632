"""Magnetic anisotropy (issue 8): dipolar shape anisotropy, spin–orbit energies from DFT, mapping to the spin model
(single-ion, XXZ, Kitaev–Γ by the four-state method) and linear spin-wave theory."""
