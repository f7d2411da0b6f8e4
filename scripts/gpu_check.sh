#!/usr/bin/env bash
# GPU check of vaecam, under 8 minutes on one CUDA GPU; see docs/gpu.md.
#
#   1. make install (nothing else is installed)
#   2. pytest -m gpu                      the tests in tests/gpu
#   3. benchmarks/training.py             step throughput, in-memory vs DataLoader, and the
#                                         projected wall time of every paper preset
#   4. the UCSD paper preset for N steps  on generated UCSD-like data (vaecam data synth ucsd,
#                                         then vaecam train ucsd --preset paper --max-steps N)
#   5. benchmarks/attention.py and        method 1 against the naive loop, and the general path
#      benchmarks/general_path.py         against a plain autograd loop, on the GPU
#
# Every part runs even when an earlier one fails; a summary follows and the exit status is 1 when
# any part failed. Settings (environment):
#   GPU_CHECK_STEPS=N             steps of the UCSD paper run (default 300; 3 on the CPU)
#   GPU_CHECK_OUT=DIR             where data and the run go (default: a new temporary folder)
#   GPU_CHECK_SKIP_INSTALL=1      use .venv as it is (e.g. shared with running jobs)
#   VAECAM_GPU_CHECK_ON_CPU=1     run the CPU-capable parts on a machine without a GPU (GPU tests
#                                 skip; a shorter benchmark; training on the CPU): for testing
#                                 this script
set -u -o pipefail
cd "$(dirname "$0")/.."

ON_CPU="${VAECAM_GPU_CHECK_ON_CPU:-0}"
if [ "$ON_CPU" = 1 ]; then STEPS="${GPU_CHECK_STEPS:-3}"; else STEPS="${GPU_CHECK_STEPS:-300}"; fi
WORK="${GPU_CHECK_OUT:-$(mktemp -d -t vaecam-gpu-check.XXXXXX)}"
PY=.venv/bin/python
VAECAM=.venv/bin/vaecam
FAILED=()
START=$SECONDS

part() {  # part NAME COMMAND...: run, time and record one part
    local name=$1
    shift
    echo
    echo "=== [$((SECONDS - START)) s] $name"
    echo "    \$ $*"
    local begin=$SECONDS
    if "$@"; then
        echo "=== $name: ok ($((SECONDS - begin)) s)"
    else
        echo "=== $name: FAILED (exit $?, $((SECONDS - begin)) s)"
        FAILED+=("$name")
    fi
}

check_device() {
    if [ "$ON_CPU" = 1 ]; then
        echo "VAECAM_GPU_CHECK_ON_CPU=1: running the CPU-capable parts only"
        return 0
    fi
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader
    "$PY" -c "import torch, sys; ok = torch.cuda.is_available(); print('torch', torch.__version__,
'CUDA', torch.version.cuda, 'device:', torch.cuda.get_device_name(0) if ok else 'none');
sys.exit(0 if ok else 1)"
}

ucsd_paper_steps() {
    local accelerator=gpu extra=()
    [ "$ON_CPU" = 1 ] && accelerator=cpu
    # Use the in-memory path where the CLI has it (--data-on-device), else DataLoader workers.
    if "$VAECAM" train ucsd --help | grep -q -- "--data-on-device"; then
        extra+=(--data-on-device)
    elif [ "$ON_CPU" != 1 ]; then
        extra+=(--num-workers 4)
    fi
    "$VAECAM" data synth ucsd "$WORK/data" --name UCSDped2 --n-train 17 --frames-per-clip 150 \
        --frame-size 360 240 --n-test-clips 1 --overwrite || return 1
    local begin=$SECONDS
    "$VAECAM" train ucsd --data "$WORK/data/UCSDped2" --out "$WORK/run" --preset paper \
        --seeds 0 --max-steps "$STEPS" --accelerator "$accelerator" --no-progress --overwrite \
        "${extra[@]}" || return 1
    local wall=$((SECONDS - begin))
    "$PY" - "$WORK/run/seed0/checkpoints/last.ckpt" "$STEPS" "$wall" <<'EOF'
import sys
from vaecam.training.checkpoints import read_checkpoint
path, steps, wall = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
done = read_checkpoint(path)["global_step"]
print(f"last.ckpt at step {done} (expected {steps}); {wall:.0f} s for the whole command "
      f"(start-up, data, {steps} steps, checkpoints)")
per_step = wall / steps  # an upper bound: start-up and checkpoints included
print(f"UCSD paper preset from this run (upper bound, {per_step * 1e3:.1f} ms per step): Ped2 "
      f"80,000 steps x 5 seeds = {per_step * 4e5 / 3600:.1f} h; Ped1 213,000 x 5 = "
      f"{per_step * 1.065e6 / 3600:.1f} h")
sys.exit(0 if done == steps else 1)
EOF
}

echo "vaecam GPU check: $(date -u +%FT%TZ), work folder $WORK, UCSD paper run of $STEPS steps"
part "device" check_device
if [ "${GPU_CHECK_SKIP_INSTALL:-0}" = 1 ]; then
    echo "GPU_CHECK_SKIP_INSTALL=1: using .venv as it is"
else
    part "make install" make install
fi
part "pytest -m gpu" "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/gpu -rs
if [ "$ON_CPU" = 1 ]; then
    part "benchmarks/training.py" "$PY" benchmarks/training.py --only mnist factorvae
else
    part "benchmarks/training.py" "$PY" benchmarks/training.py --threads 0
fi
part "UCSD paper preset, $STEPS steps" ucsd_paper_steps
if [ "$ON_CPU" = 1 ]; then
    part "benchmarks/attention.py" "$PY" benchmarks/attention.py --batch 8 --repeats 1
else
    part "benchmarks/attention.py" "$PY" benchmarks/attention.py --device cuda
    part "benchmarks/general_path.py" "$PY" benchmarks/general_path.py --device cuda
fi

echo
echo "=== summary after $((SECONDS - START)) s"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "FAILED: ${FAILED[*]}"
    exit 1
fi
echo "all parts passed"
