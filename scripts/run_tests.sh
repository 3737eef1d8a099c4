#!/usr/bin/env bash
# Install hampart (see scripts/env.sh) and run the whole test suite.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python -m pytest -q tests "$@"
