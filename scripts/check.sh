#!/usr/bin/env bash
# The one check command (CI runs it too): set up, then ruff (lint and format), hadolint, actionlint, mypy and
# pytest.
# Extra arguments go to pytest, e.g. scripts/check.sh tests/unit -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/hadolint Dockerfile
.venv/bin/actionlint .github/workflows/*.yml
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
