#!/usr/bin/env bash
# One lent-GPU call: train a burst, export, evaluate, and leave the results in $OUT.
#   bash diffmatte/train/gpu_burst.sh MINUTES [EVAL_DIR] [RESUME_OR_INIT_WEIGHTS]
# Carry the photo folder (.carry/photos) and, for the evaluation, a dataset folder.
# Brings back: the EMA export (fp16 safetensors), train.log, metrics.jsonl, eval JSONs, the log.
# A later burst starts from the exported weights (optimizer state does not fit the
# device tool's 16 MiB-per-file return limit).
set -uo pipefail
minutes=${1:?minutes}; eval_dir=${2:-}; init=${3:-diffmatte/weights/default.safetensors}
out=${OUT:-/tmp/burst-out}; run=/tmp/burst-run
mkdir -p "$out"
export PYTHONPATH="$PWD:$PWD/plugin" PYTHONUNBUFFERED=1
nvidia-smi -L || true
python3 -m diffmatte.train.burst --out "$run" --minutes "$minutes" --photos .carry/photos --init "$init" \
  2>&1 | tee "$out/burst.log"
cp "$run"/*.safetensors "$run/train.log" "$run/metrics.jsonl" "$out/" 2>/dev/null
w=$(ls -t "$run"/*.safetensors 2>/dev/null | head -1)
if [ -n "$eval_dir" ] && [ -n "$w" ]; then
  python3 - "$run/prior_only.safetensors" <<'PY'
import sys
from diffmatte.modeling import build_model
from diffmatte.modeling.variants import get_config
from diffmatte.weights import save_safetensors
save_safetensors(build_model(get_config("lite_cf")).eval(), sys.argv[1], half=True)  # untrained = the prior itself
PY
  for name in ${EVAL_SETS:-new:"$w" old:"$init" prior:"$run/prior_only.safetensors"}; do
    python3 -m diffmatte eval "$eval_dir" --weights "${name#*:}" --baselines none --device cuda --steps 10 --seed 0 \
      --json "$out/eval_${name%%:*}.json" --quiet 2>&1 | tail -4 | tee -a "$out/eval.log"
  done
fi
ls -la "$out"
