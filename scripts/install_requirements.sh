#!/usr/bin/env bash
# Install the pinned Python packages into a virtualenv. The one install step shared by CI
# (scripts/setup.sh runs it with --dev) and the image (the Dockerfile runs it without), so the
# packages the tests run on are the packages that ship.
#
#   scripts/install_requirements.sh [--dev] [--venv DIR]
#
# DIR (default: .venv in the repository) is created with $PYTHON (default: python3) when it has no
# interpreter yet. The interpreter must be Python 3.11: constraints.txt is a freeze for it.
# requirements.txt (plus requirements-dev.txt with --dev) is installed with every version pinned by
# constraints.txt; torch comes from there too. Nothing is done when a stamp of those files in DIR
# matches. pip's own settings apply (the Dockerfile sets PIP_NO_CACHE_DIR=1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
  echo "usage: scripts/install_requirements.sh [--dev] [--venv DIR]" >&2
  exit 2
}

dev=0
venv=.venv
while (($#)); do
  case "$1" in
    --dev) dev=1; shift ;;
    --venv) [[ $# -ge 2 ]] || usage; venv="$2"; shift 2 ;;
    *) usage ;;
  esac
done

files=(requirements.txt)
if ((dev)); then files+=(requirements-dev.txt); fi

python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "install_requirements: creating $venv with $python" >&2
  "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "install_requirements: $venv runs Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'), but constraints.txt is a freeze for Python 3.11; remove $venv and set PYTHON to a Python 3.11 interpreter" >&2
  exit 1
fi

stamp="$venv/.alpha-requirements-$(cat "${files[@]}" constraints.txt | sha256sum | cut -c1-16)"
if [[ -f "$stamp" ]]; then
  exit 0
fi
echo "install_requirements: installing ${files[*]} (every version from constraints.txt)" >&2
args=()
for file in "${files[@]}"; do args+=(-r "$file"); done
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" -c constraints.txt
rm -f "$venv"/.alpha-requirements-*
touch "$stamp"
