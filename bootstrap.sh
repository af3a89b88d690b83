#!/usr/bin/env bash
# Entry point of the container, and the local one.
#
#   ./bootstrap.sh                     RunPod worker (production)
#   ./bootstrap.sh --rp_serve_api ...  RunPod's local API (POST /runsync)
#   ./bootstrap.sh --test_input '{"input": {"prompt": "..."}}'   one job, exit 0 or 1
#   ./bootstrap.sh serve               local alpha API on 127.0.0.1:7861 (debugging)
#
# ComfyUI is started and owned by handler.supervisor (127.0.0.1 only), which then runs
# `python -m handler.doors.alpha.server` for `serve`, or `python -m handler` with these arguments.
# With ALPHA_TEST_MODELS=1 on a development checkout, the environment is prepared first
# (scripts/setup.sh, a no-op once done).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [[ "${ALPHA_TEST_MODELS:-0}" == "1" && -x scripts/setup.sh ]]; then
  scripts/setup.sh >&2
fi

python="${ALPHA_PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi
exec "$python" -m handler.supervisor "$@"
