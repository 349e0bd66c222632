#!/usr/bin/env bash
# The main job: the demo workflow on the embedded default (results in out/):
#   1. magnetic sublattice, shells and superexchange paths of the shipped CrI3 and VPS3 monolayers;
#   2. `wannmag run` on CrI3 with the fast preset: GPAW DFT+U energies of four magnetic orders, Wannier functions,
#      exchange by three routes, anisotropy, Monte Carlo Tc, report (out/CrI3/report.md and report.html).
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
echo "=== CrI3: the whole workflow (fast preset) ==="
wannmag run data/structures/CrI3_monolayer.cif --preset fast --out out/CrI3 --workers 2
echo "demo finished: out/CrI3/report.md, out/CrI3/report.html, plots in out/"
