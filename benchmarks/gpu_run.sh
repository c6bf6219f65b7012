#!/usr/bin/env bash
# The GPU check in one go, each part under its own time limit (about 9 minutes in all on an H200):
#
#   bash benchmarks/gpu_run.sh OUT            # on a CUDA machine
#   bash benchmarks/gpu_run.sh OUT --tiny     # CPU smoke run: tiny model, data and rounds (a few minutes)
#
# Parts, in order (docs/speed.md, "GPU run (prepared)"):
#   model     a random-weight bert-base-chinese-shaped BERT (character vocabulary, nothing downloaded)
#   titles    benchmarks/speed.py on CSL titles, batch 16, bf16 (launch-bound)
#   b32, b64  benchmarks/speed.py on random token ids, 128 tokens, batch 32 and 64 (compute-bound)
#   memory    device memory after each of 5 consecutive fits in one process
#   pytest    python -m pytest -q -m gpu
#   paper     fit time of the paper's configuration on CSL titles, baseline and full (paper: 427 s, 680 s)
#   e5        e5-small fine-tuning (lr 1e-4, 3 epochs), seeds 13 42 3407, baseline and full
#   table     the final table
#
# Environment: SKTAIL_DATA (folder holding csl-title/train.tsv and dev.tsv; default ../shared/data
# beside the repository), PARTS (the parts to run, default all, e.g. PARTS="model paper table"),
# TIMEOUT_<PART> (seconds, e.g. TIMEOUT_E5=300), BUDGET (seconds for all parts, default 540: e5 gets
# what the others left, at least 60), E5_JOBS (e5 fits at once, default 6), PYTHON (default python3),
# SKTAIL_GPU_TINY=1 (same as --tiny).
#
# OUT receives three files: summary.md (the table), summary.json (every part's numbers) and
# parts.tar.gz (every part's JSON and log); the working folder is kept and its path printed.
set -u -o pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 2
fi
OUT=$1
TINY=${SKTAIL_GPU_TINY:-0}
[[ "${2:-}" == "--tiny" ]] && TINY=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export SKTAIL_DATA=${SKTAIL_DATA:-$ROOT/../shared/data}
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PYTHON:-python3}
PARTS=${PARTS:-model titles b32 b64 memory pytest paper e5 table}
for needs in titles b32 b64 memory paper; do  # these parts run on the model part's folder
    [[ " $PARTS " == *" $needs "* && " $PARTS " != *" model "* ]] && PARTS="model $PARTS"
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sktail-gpu-run.XXXXXX")
MODEL="$WORK/model"
trap 'rm -rf "$MODEL"' EXIT

BUDGET=${BUDGET:-540}  # seconds for all parts; e5, the last, gets what the others left
if [[ $TINY == 1 ]]; then
    DEV=(--device cpu)
    PREC=(--precision fp32)
    CONFIG=tiny
    TITLES=(--steps 3 --repeats 3 --predict-texts 48)
    RANDOM32=(--seq-len 32 --batch-size 8 --steps 2 --repeats 1 --predict-texts 16)
    RANDOM64=(--seq-len 32 --batch-size 16 --steps 2 --repeats 1 --predict-texts 16)
    MEMORY=(--fits 3 --rows 48)
    PYTEST=(tests/encoders/test_hf.py)  # collecting every test module takes longer than the run itself
    PAPER=(--epochs 1 --max-train 200 --max-eval 100)
    E5=(--encoder "$MODEL" --seeds 13 --epochs 1 --max-train 200 --max-eval 100 --jobs "${E5_JOBS:-2}")
    declare -A LIMIT=([model]=120 [titles]=300 [b32]=300 [b64]=300 [memory]=300 [pytest]=300 [paper]=300 [e5]=600 [table]=60)
    BUDGET=${BUDGET_TINY:-3600}
else
    DEV=(--device cuda)
    PREC=(--precision bf16)
    CONFIG=base
    TITLES=(--steps 50 --repeats 3 --predict-texts 1024)
    RANDOM32=(--seq-len 128 --batch-size 32 --steps 60 --repeats 3 --predict-texts 512)
    RANDOM64=(--seq-len 128 --batch-size 64 --steps 40 --repeats 3 --predict-texts 512)
    MEMORY=(--fits 5 --rows 128)
    PYTEST=()
    PAPER=(--epochs 2)
    E5=(--encoder e5-small --epochs 3 --jobs "${E5_JOBS:-6}")
    # Ceilings: a part that reaches its limit is stopped (what it wrote is kept) and the rest still run.
    declare -A LIMIT=([model]=30 [titles]=75 [b32]=40 [b64]=40 [memory]=35 [pytest]=45 [paper]=140 [e5]=0 [table]=15)
    if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "gpu_run.sh: CUDA is not available; use --tiny for the CPU smoke run" >&2
        exit 2
    fi
fi
START=$(date +%s)

: > "$WORK/parts.txt"
# part NAME COMMAND...: run under the part's time limit, log to WORK/NAME.log, note exit status and seconds.
part() {
    local name=$1 var limit start rc
    shift
    [[ " $PARTS " == *" $name "* ]] || return 0
    var="TIMEOUT_${name^^}"
    limit=${!var:-${LIMIT[$name]}}
    if [[ $limit == 0 ]]; then  # what is left of the budget, at least a minute
        limit=$(( BUDGET - ($(date +%s) - START) - ${LIMIT[table]} ))
        (( limit < 60 )) && limit=60
    fi
    start=$(date +%s)
    echo "== $name (limit ${limit} s)"
    timeout -k 10 "$limit" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    [[ $rc == 124 || $rc == 137 ]] && echo "   stopped at its time limit" >> "$WORK/$name.log"
    printf '%-7s rc=%-3s %4ss\n' "$name" "$rc" "$(( $(date +%s) - start ))" | tee -a "$WORK/parts.txt"
    tail -n 3 "$WORK/$name.log" | cut -c1-200 | sed 's/^/   /'
}

part model "$PY" -m benchmarks.gpu_run model "$MODEL" --config "$CONFIG"
SPEED=("$PY" -m benchmarks.speed "${DEV[@]}" "${PREC[@]}" --config "$CONFIG" --model-dir "$MODEL")
part titles "${SPEED[@]}" --shape titles --batch-size 16 "${TITLES[@]}" --out "$WORK/speed-titles.json"
part b32 "${SPEED[@]}" --shape random "${RANDOM32[@]}" --out "$WORK/speed-random-b32.json"
part b64 "${SPEED[@]}" --shape random "${RANDOM64[@]}" --out "$WORK/speed-random-b64.json"
part memory "$PY" -m benchmarks.gpu_run memory --model-dir "$MODEL" "${DEV[@]}" "${MEMORY[@]}" --out "$WORK/memory.json"
part pytest "$PY" -m pytest -q -p no:cacheprovider --continue-on-collection-errors -m gpu "${PYTEST[@]}"
part paper "$PY" -m benchmarks.gpu_run paper --model-dir "$MODEL" "${DEV[@]}" "${PAPER[@]}" --out "$WORK/paper.json"
part e5 "$PY" -m benchmarks.gpu_run e5 "${DEV[@]}" "${E5[@]}" --out "$WORK/e5"
part table "$PY" -m benchmarks.gpu_run table "$WORK" --summary-dir "$OUT"

tar -czf "$OUT/parts.tar.gz" -C "$WORK" --exclude model .
echo
cat "$OUT/summary.md" 2>/dev/null || echo "(no summary: the table part did not run)"
echo "parts: $OUT/parts.tar.gz; working folder: $WORK"
