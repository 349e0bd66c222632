#!/usr/bin/env bash
# The main job: the demo workflow on the embedded default (results in out/):
#   1. magnetic sublattice, shells and superexchange paths of the shipped CrI3 and VPS3 monolayers;
#   2. `wannmag run` with the fast preset on CrI3, then on VPS3: GPAW DFT+U energies of four magnetic orders,
#      Wannier functions, exchange by three routes, anisotropy, Monte Carlo Tc/TN, report (out/<material>/report.md
#      and report.html); each run ends with its summary block.  `--workers 2`: the DFT configurations, the FM/NM
#      Wannier branches, the spin-orbit calculations and the Monte Carlo sizes run two at a time.
# Re-running skips finished steps (and resumes an interrupted one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
mkdir -p out
for m in CrI3 VPS3; do
    echo "=== $m: magnetic sublattice, neighbour shells and superexchange paths ==="
    wannmag structure "data/structures/${m}_monolayer.cif" --plot "out/${m}_structure.png"
    echo
done
for m in CrI3 VPS3; do
    echo "=== $m: the whole workflow (fast preset) ==="
    wannmag run "data/structures/${m}_monolayer.cif" --preset fast --out "out/$m" --workers 2
    echo
done
echo "demo finished: out/CrI3/report.md, out/CrI3/report.html, out/VPS3/report.md, out/VPS3/report.html, plots in out/"
