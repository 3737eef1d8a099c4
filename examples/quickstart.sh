#!/usr/bin/env bash
# README command 1: install, then the whole job on a small built-in example:
#   generate (train + test structures) -> slice (METIS, halo 2) -> mpirun -n 2 train -> predict -> evaluate
# 96-atom HfO2 cells with an interaction radius of 4.5 A keep it to a few minutes on 2 CPU cores;
# the same commands run the paper's 3,000-atom cell (drop --size) on a GPU cluster.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
OUT=${OUT:-runs/quickstart}
EPOCHS=${EPOCHS:-150}
RCUT=4.5
mkdir -p "$OUT"
set -x
hampart generate hfo2 --seed 0 --size 2 --vacancies 0.05 --interaction-radius $RCUT --out "$OUT/train" --force
hampart generate hfo2 --seed 1 --size 2 --vacancies 0.05 --interaction-radius $RCUT --out "$OUT/test" --force
hampart inspect "$OUT/train" --rcut $RCUT
hampart slice "$OUT/train" --rcut $RCUT --method metis --parts 4 --halo 2 --out "$OUT/parts-train" \
        --plot "$OUT/parts-train.png"
hampart slice "$OUT/test" --rcut $RCUT --method slab --axis x --parts 2 --halo 2 --out "$OUT/parts-test"
rm -rf "$OUT/model"
mpirun -n 2 hampart train --parts "$OUT/parts-train" --validation "$OUT/parts-test" --out "$OUT/model" \
        --epochs "$EPOCHS" --lr 3e-3 --max-gib 4 \
        --model '{"lmax": 4, "mmax": 2, "channels": 8, "ff_hidden": 16, "heads": 2, "layers": 1}'
hampart predict "$OUT/model/model.pt" "$OUT/test" --out "$OUT/H_pred.npz"
hampart evaluate "$OUT/H_pred.npz" --reference "$OUT/test" --rcut $RCUT --plot "$OUT/evaluation.png"
set +x
echo "done: results in $OUT (evaluation.png, parts-train.png, model/log.jsonl)"
