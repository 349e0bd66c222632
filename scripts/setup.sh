#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv with wannmag and everything it needs, on Debian/Ubuntu.
# System packages (installed with apt-get when running as root and missing): a C++ compiler, Python headers and
# venv, libxc and OpenBLAS (to build GPAW, the embedded DFT engine) and wannier90 (wannier90.x).
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run repeatedly (pip runs only when inputs changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
VENV="${WANNMAG_VENV:-$ROOT/.venv}"

command -v "$PY" >/dev/null || { echo "setup: error: $PY not found; install Python >= 3.11" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: error: Python >= 3.11 needed, found $("$PY" -V)" >&2; exit 1; }

missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v wannier90.x >/dev/null || missing+=(wannier90)
for pkg in libxc-dev libopenblas-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
"$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
"$PY" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: error: missing system packages ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.wannmag-env-stamp"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing wannmag and its dependencies into $VENV (GPAW builds from source: ~2 min)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # GPAW 26.7's C sources are C++: build them with g++
    # the llm extra pins torch==2.13.0, the CPU build found in the local wheel directory (no CUDA download)
    CC=g++ "$VENV/bin/python" -m pip install -q -e "$ROOT[dft,dask,test,llm]"
    echo "$want" > "$stamp"
fi
# BLAS threads slow GPAW's plane-wave mode down; Numba and our own kernels choose their threads themselves
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export MPLBACKEND=Agg
# shellcheck disable=SC1091
source "$VENV/bin/activate"
