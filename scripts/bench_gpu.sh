#!/usr/bin/env bash
# The GPU checks of issue 16 in one go, under 5 minutes on one GPU (each part has its own
# time limit, 290 s in all; a part that fails or runs out says so and the others still run):
#   1. EFDMix (and MixStyle) against the official formulation, forward + backward at the
#      ResNet-18/50 insertion shapes, CUDA float32 and bfloat16;
#   2. training-step time of ResNet-18 with none / mixstyle / efdmix after layer1-3 at 224 px,
#      batch 128, bf16 autocast + channels_last, with each step's peak memory;
#   3. the input pipeline on PACS at 224 px: dgbench's decoded cache + batched augmentation
#      against a PIL + torchvision DataLoader (images/s), when PACS is there.
# Usage (from the repository root, dgbench installed):
#   bash scripts/bench_gpu.sh [PACS_ROOT]        # default: ../shared/data/PACS
# With the device tool:  run(command="bash scripts/bench_gpu.sh", timeout_s=420)
set -u
cd "$(dirname "$0")/.."
PACS="${1:-${PACS:-../shared/data/PACS}}"
WORKERS="${WORKERS:-8}"
part() {  # part SECONDS TITLE COMMAND...
  local limit=$1 title=$2; shift 2
  echo; echo "== $title"
  local t0=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  if [ $rc -eq 124 ]; then echo "(stopped after ${limit} s)"; elif [ $rc -ne 0 ]; then echo "(failed: exit $rc)"; fi
  echo "($((SECONDS - t0)) s)"
}
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi not found"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA device: nothing to measure"; exit 2; }
part 40 "1a. EFDMix / MixStyle vs official op, CUDA float32, batch 32" \
  python scripts/bench_augmenters.py --device cuda --dtype float32 --only efdmix,mixstyle,none --repeats 6
part 40 "1b. EFDMix / MixStyle vs official op, CUDA bfloat16, batch 32" \
  python scripts/bench_augmenters.py --device cuda --dtype bfloat16 --only efdmix,mixstyle,none --repeats 6
part 80 "2. training step, ResNet-18 224 px batch 128, bf16 autocast + channels_last" \
  python scripts/bench_train.py --what augmenters --device cuda --rounds 5 --steps 5
if [ -d "$PACS" ]; then
  part 130 "3. input pipeline, PACS 224 px, batch 64, $WORKERS workers (cache built first)" \
    python scripts/bench_data.py --data-root "$PACS" --size 224 --batch 64 --workers "$WORKERS" --input-only
else
  echo; echo "== 3. input pipeline: no PACS at $PACS (pass its folder as the first argument)"
fi
