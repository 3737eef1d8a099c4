# Sourced by the two README commands: use the active virtual environment, or make .venv here,
# and install hampart with its test and MPI extras. torch is pinned first so that pip does not
# fetch a multi-GB CUDA build on CPU-only machines; set HAMPART_TORCH to choose another.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! python -c "import torch" >/dev/null 2>&1; then
    python -m pip install -q "torch==${HAMPART_TORCH:-2.13.0}"
fi
python -m pip install -q -e ".[test,mpi]"
