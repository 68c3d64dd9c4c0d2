#!/usr/bin/env bash
# Re-creates the recorded full-scale CPU runs of Chapter 9 (results/fullscale/<algo>_<env>_s<seed>/).
# Run from the repository root of a clean checkout (the manifests record the commit and whether
# the tree was dirty):  bash results/fullscale/record.sh [mpe|listener|vmas|all]  (default all)
# Two runs at a time (one per core), one torch thread each. Checkpoints are written but not
# committed (.gitignore); metrics.csv and manifest.json are.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=results/fullscale
what=${1:-all}

one() {  # one <config> <seed> <steps> <out-name> [extra args...]
  local cfg=$1 seed=$2 steps=$3 name=$4; shift 4
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PY" -m harl_mini train --config "$cfg" --seed "$seed" --steps "$steps" \
    --out "$OUT/$name" --overwrite --no-progress --no-tensorboard --checkpoint-every 0 --keep-checkpoints 1 "$@" \
    > "$OUT/$name.log" 2>&1 || { echo "FAILED: $name (see $OUT/$name.log)"; return 1; }
  tail -n 1 "$OUT/$name.log"
}
export -f one; export PY OUT

jobs=()
if [[ $what == mpe || $what == all ]]; then
  for algo in happo hatrpo mappo; do for seed in 0 1 2; do
    jobs+=("configs/mpe/simple_spread/$algo.yaml $seed 1e6 ${algo}_simple_spread_s$seed"); done; done
fi
if [[ $what == listener || $what == all ]]; then
  for algo in happo hatrpo mappo; do for seed in 0 1 2; do
    jobs+=("configs/mpe/simple_speaker_listener/$algo.yaml $seed 1e6 ${algo}_simple_speaker_listener_s$seed"); done; done
fi
if [[ $what == vmas || $what == all ]]; then
  for algo in happo mappo; do for seed in 0 1 2; do
    jobs+=("configs/vmas/balance/$algo.yaml $seed 3e6 ${algo}_balance_s$seed"); done; done
fi
printf '%s\n' "${jobs[@]}" | xargs -P 2 -L 1 bash -c 'one $0 "$@"'
