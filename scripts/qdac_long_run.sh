#!/usr/bin/env bash
# Launch or resume QDAC's CPU training runs in the background. Safe to run again at any time
# (e.g. in a later session): every run resumes from its last checkpoint (state.pt), finished
# runs are skipped, a chain still running is left alone.
#
#   bash scripts/qdac_long_run.sh                 # the two default chains below, in parallel
#   bash scripts/qdac_long_run.sh "qdac16_50hz_noasr qdac16_25hz_asr"   # one chain = configs in order
#
# Chains (each a sequence of configs/qdac/<name>.yaml, trained one after the other; one chain per core):
#   qdac16_50hz_asr                          (ASR-supervised C1, 8,000 steps)
#   qdac16_50hz_noasr -> qdac16_25hz_asr -> qdac16_25hz_asr_cont
#                                            (ablation without the ASR loss: faster steps, so the
#                                             25 Hz model follows it on the same core, then 4000
#                                             more 25 Hz steps warm-started from it)
# Each run: 1 thread, output in $QDAC_RUNS/<name>/ (state.pt, log.jsonl, export/), console log in
# $QDAC_RUNS/<name>.log. Ship an export with: python scripts/ship_checkpoint.py qdac $QDAC_RUNS/<name>/export NAME
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-/work/venv/bin/python}"
RUNS="${QDAC_RUNS:-/tmp/qdac_runs}"
CORPUS="/tmp/qdac_corpus/train"  # the path configs/qdac/*.yaml read
mkdir -p "$RUNS"
cd "$REPO"
if [ ! -f "$CORPUS/manifest.jsonl" ]; then
  echo "building the training corpus in $CORPUS"
  "$PY" scripts/build_training_corpus.py --out "$CORPUS" > "$RUNS/build_corpus.log" 2>&1
fi
# The synthetic voices of rounds 2 and 3 (configs/qdac/*_r2*.yaml, *_r3*.yaml), made only when a chain uses them.
if [[ " $* " == *_r[23]* ]]; then
  for spec in "flite_slt --engine flite --voice slt --n 700 --seed 11" "kokoro_kumo --engine kokoro --n 120 --seed 12"; do
    folder="/tmp/qdac_corpus/${spec%% *}"
    if [ ! -f "$folder/manifest.jsonl" ]; then
      echo "synthesising $folder"
      # shellcheck disable=SC2086
      "$PY" scripts/make_qtts_corpus.py --out "$folder" ${spec#* } > "$RUNS/$(basename "$folder").log" 2>&1
    fi
  done
fi

finished() {  # finished RUN_DIR: state.pt has reached train.steps
  [ -f "$1/state.pt" ] && "$PY" -c "import sys, torch; s = torch.load(sys.argv[1], weights_only=False); \
sys.exit(0 if s['step'] >= s['run']['train']['steps'] else 1)" "$1/state.pt" 2>/dev/null
}

run_chain() {  # run_chain NAME...: train each config in order (resuming), in the foreground
  for name in "$@"; do
    out="$RUNS/$name"
    if finished "$out"; then echo "$name: finished"; continue; fi
    resume=()
    [ -f "$out/state.pt" ] && resume=(--resume)
    mkdir -p "$out"
    echo "$name: training (${resume[*]:-new run}) $(date -u +%FT%TZ)"
    OMP_NUM_THREADS=1 PYTHONPATH="$REPO" "$PY" -m qtts_bench.cli train qdac "configs/qdac/$name.yaml" \
      --out "$out" "${resume[@]}" --no-progress >> "$RUNS/$name.log" 2>&1 || { echo "$name: failed"; return 1; }
  done
}

CHAINS=("$@")
[ ${#CHAINS[@]} -gt 0 ] || CHAINS=("qdac16_50hz_asr" "qdac16_50hz_noasr qdac16_25hz_asr qdac16_25hz_asr_cont")
for chain in "${CHAINS[@]}"; do
  key="chain_$(echo "$chain" | tr ' ' '+')"
  pidfile="$RUNS/$key.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$chain: already running (pid $(cat "$pidfile"))"
    continue
  fi
  # shellcheck disable=SC2086
  nohup bash -c "$(declare -f finished run_chain); PY='$PY' RUNS='$RUNS' REPO='$REPO'; cd '$REPO'; run_chain $chain" \
    >> "$RUNS/$key.log" 2>&1 &
  echo $! > "$pidfile"
  echo "$chain: started (pid $!), log $RUNS/$key.log"
done
