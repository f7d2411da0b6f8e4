#!/usr/bin/env bash
# MNIST sensitivity study (docs/results.md): lr {3e-4, 1e-3} x batch {32, 128} x 3 seeds x
# digits {1, 3}, 30 epochs each (the cpu preset's length), then every attention setting
# (layer x method x activation) and the recon-abs baseline scored on the pasted-stroke set.
# Usage: scripts/mnist_sensitivity.sh OUT   (about 30-60 minutes on 2 CPU cores)
set -euo pipefail
out=${1:?usage: scripts/mnist_sensitivity.sh OUT}
vaecam=${VAECAM:-.venv/bin/vaecam}
for digit in 1 3; do
  for lr in 0.0003 0.001; do
    for batch in 32 128; do
      run="$out/digit${digit}_lr${lr}_batch${batch}"
      if [ ! -f "$run/localize/results.json" ]; then
        "$vaecam" train mnist --preset cpu --digit "$digit" --lr "$lr" --batch-size "$batch" \
          --max-epochs 30 --seeds 0 1 2 --out "$run/train" --no-progress --resume 2>/dev/null \
          || "$vaecam" train mnist --preset cpu --digit "$digit" --lr "$lr" \
             --batch-size "$batch" --max-epochs 30 --seeds 0 1 2 --out "$run/train" --no-progress
        "$vaecam" localize mnist --preset cpu --checkpoint "$run/train" --out "$run/localize" \
          --maps attention --no-progress --overwrite
      fi
    done
  done
done
