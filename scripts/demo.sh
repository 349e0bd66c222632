#!/usr/bin/env bash
# The main job: the demo workflow on the shipped CrI3 and VPS3 monolayers (results in out/).
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
echo "demo finished: plots in out/"
