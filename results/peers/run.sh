#!/usr/bin/env bash
# Side-by-side peer benchmark (see README.md in this folder): bash results/peers/run.sh [--quick] [...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."
exec python3 "$here/bench.py" "$@"
