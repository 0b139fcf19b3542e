#!/usr/bin/env bash
# One call on the lent GPU machine (see docs/BENCHMARKS.md): GPU tests, benchmarks and/or the gpu-profile
# study, whatever PARTS names (a comma list of tests, bench, step, pretrain, study, finetune, compile; "finetune"
# makes the study fine-tune the backbone "pretrain" made in the same call: the weights never leave the machine). Everything it writes for the
# way back goes to $OUT. Usage: HENET_GIT_COMMIT=<this checkout's short commit> bash benchmarks/gpu_call.sh
# PARTS LIMIT_SECONDS (the copied .git there may not show the real commit, so name it).
set -u
export PYTHONUNBUFFERED=1
T0=$(date +%s)
PARTS=${1:-tests,bench,study}
LIMIT=${2:-570}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# grad-cam and ttach are not in the machine's image: they travel as wheels in .whl/
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
python3 -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', sys.version.split()[0])"
# published results brought back by earlier calls are reused (found by identity), never retrained
if [[ $PARTS == *tests* ]]; then
  python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log" | tail -12
fi
if [[ $PARTS == *bench* ]]; then
  {
    python3 benchmarks/bench_eval.py --device cuda --skip-loop
    python3 benchmarks/bench_rpe.py --device cuda --batch 256
    python3 benchmarks/bench_model.py --device cuda --batch 64 --erasing re+rpe
    python3 benchmarks/bench_model.py --device cuda --skip-train --cuda-graphs
    python3 benchmarks/bench_model.py --device cuda --height 128 --width 64 --batch 64 --erasing re+rpe --skip-infer
  } 2>&1 | grep --line-buffered -v Warning | tee "$OUT/bench.log"
fi
if [[ $PARTS == *bench* || $PARTS == *step* ]]; then
  # issue 20: ops per phase, syncs and step time at 384x128, batch 64 (P 16 x K 4), eager and one CUDA graph
  for MODE in eager cuda-graph; do
    python3 benchmarks/bench_step.py --profile gpu --device cuda --height 384 --width 128 --batch 64 \
      --classes 751 --mode "$MODE" --steps 20 --warmup 5
  done 2>&1 | grep --line-buffered -v Warning | tee "$OUT/bench_step.log"
fi
if [[ $PARTS == *pretrain* ]]; then
  # issue 21: the gpu profile's ResNet50 pretrained on SynthReID's pretrain-full set at the start of the lease;
  # its cost is the wall time below, and its provenance (config hash, SHA-256, history) comes back
  P0=$(date +%s)
  python3 -m henetlib pretrain --profile gpu --device cuda 2>&1 | grep --line-buffered -v Warning | tee "$OUT/pretrain.log"
  echo "pretrain took $(( $(date +%s) - P0 )) s" | tee -a "$OUT/pretrain.log"
  cp pretrained/gpu-*.json "$OUT/" 2>/dev/null
fi
if [[ $PARTS == *study* ]]; then
  BUDGET=$(( LIMIT - ( $(date +%s) - T0 ) - 20 ))  # the archive is refreshed after every run
  REGIME=""
  [[ $PARTS == *finetune* ]] && REGIME="--finetune"  # the published runs record the pretraining's config hash
  echo "study: $BUDGET s of training in this call $REGIME"
  python3 -m henetlib publish --profile gpu --device cuda $REGIME --budget "$BUDGET" --out "$OUT" 2>&1 | grep --line-buffered -v Warning | tee "$OUT/study.log"
fi
if [[ $PARTS == *compile* ]]; then
  timeout $(( LIMIT - ( $(date +%s) - T0 ) - 10 )) python3 benchmarks/bench_model.py --device cuda --batch 64 \
    --erasing re+rpe --compile --skip-infer 2>&1 | grep --line-buffered -v Warning | tee "$OUT/compile.log"
fi
echo "call took $(( $(date +%s) - T0 )) s"
