#!/usr/bin/env bash
# The test suite (default: everything not marked slow; pass pytest arguments to narrow or widen, e.g. -m slow).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec python -m pytest -q "$@"
