#!/usr/bin/env bash
# Build the worker image from this checkout's Dockerfile and run it: what RunPod pulls, started and answering.
#
#   scripts/image_check.sh [--offline] [--tag NAME]
#   scripts/image_check.sh --image NAME        the checks only, on an image built already (the release)
#
#   --offline   the two remote bases cannot be pulled: build stand-ins for them on this machine first
#               (a debootstrap root of Debian bookworm with this host's package sources and CA bundle as
#               BASE_IMAGE, uv's PyPI wheel as UV_IMAGE), and build with PYTHON_SOURCE=system and
#               COMFYUI_SOURCE=wheel. Without it the Dockerfile's pinned defaults are built.
#   --tag NAME  the image's name (default localhost/layerdiffuse-alpha:check)
#   --image N   build nothing: run the checks on the image N (the release workflow's, built already)
#
# The engine is `docker buildx` where a Docker daemon answers, else buildah (chroot isolation; overlay
# storage where this kernel mounts it, vfs otherwise). Always BAKE_MODELS=0: the checks run on the test models
# the image makes itself. Then, inside the built image (scripts/image_smoke.py):
#   1. the README's test job through the image's own CMD (./bootstrap.sh) in test mode, warm-up off;
#   2. python -m handler.workflow check of every shipped workflow;
#   3. one job in production mode against the loopback RunPod job-API emulator (tests/runpod_emulator.py):
#      the container's worker takes it, posts the result, and exits on SIGTERM (code 143, 128 + SIGTERM, as
#      the supervisor ends any stop by a signal) within the drain bound.
# Each phase prints its time; the end prints the image's size by layer. Exit 0 only when every phase passed.
# Cached between runs: the stand-in root and uv binary under ~/.cache/layerdiffuse-alpha/image, and the engine's
# layer cache, which the image (kept under its tag) anchors: a handler change rebuilds only the last layers.
# `buildah rmi --prune` (or `docker image prune`) reclaims the layers of earlier builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

offline=0
tag=localhost/layerdiffuse-alpha:check
built=0
while (($#)); do
  case "$1" in
    --offline) offline=1; shift ;;
    --tag) [[ $# -ge 2 ]] || { echo "--tag needs a value" >&2; exit 2; }; tag="$2"; shift 2 ;;
    --image) [[ $# -ge 2 ]] || { echo "--image needs a value" >&2; exit 2; }; tag="$2"; built=1; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "image_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cache="${XDG_CACHE_HOME:-$HOME/.cache}/layerdiffuse-alpha/image"
mkdir -p "$cache"
# The stand-ins' versions: uv as pinned by the Dockerfile's UV_IMAGE, Debian's release with Python 3.11.
uv_version="$(sed -n 's/^ARG UV_IMAGE=[^:]*:\([0-9.]*\)@.*/\1/p' Dockerfile)"
suite=bookworm
# Bumped with any change to how the stand-in root is made: it keys the cached root (and so the layer cache).
base_recipe=2
started_all=$(date +%s)

timings=()
phase_start=0
phase() { phase_start=$(date +%s.%N); echo "== image_check: $1" >&2; }
phase_done() {
  local took
  took="$(echo "$(date +%s.%N) - $phase_start" | bc)"
  printf '== image_check: %s done in %.1f s\n' "$1" "$took" >&2
  timings+=(--timing "$1=$took")
}

# --- the engine -------------------------------------------------------------------------------------------
engine=buildah
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
fi
need_packages=()
if [[ $engine == buildah ]]; then
  command -v buildah >/dev/null 2>&1 || need_packages+=(buildah)
  ((offline)) && { command -v debootstrap >/dev/null 2>&1 || need_packages+=(debootstrap); }
fi
command -v bc >/dev/null 2>&1 || need_packages+=(bc)
if ((${#need_packages[@]})); then
  echo "== image_check: installing ${need_packages[*]} from Debian's packages" >&2
  [[ $(id -u) == 0 ]] || { echo "image_check: needs root to install ${need_packages[*]}" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

storage=vfs
bh() { buildah --storage-driver "$storage" "$@"; }

# --- the stand-ins (--offline) ----------------------------------------------------------------------------
standin_base=localhost/alpha-standin-base:$suite
standin_uv=localhost/alpha-standin-uv:$uv_version

host_sources() {
  # The host's package sources and the apt settings that reach them (a snapshot mirror needs its
  # Check-Valid-Until), never a mirror named here.
  ls /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true
  grep -l '^Acquire::' /etc/apt/apt.conf.d/* 2>/dev/null || true
}

make_base_root() {
  local root="$1" mirror
  mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [[ -n "$mirror" ]] || { echo "image_check: no Debian mirror in this host's apt sources" >&2; exit 1; }
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root"/etc/apt/sources.list
  local file
  for file in $(host_sources); do
    mkdir -p "$root$(dirname "$file")"
    cp "$file" "$root$file"
  done
  # The host's CA bundle, for pip (PIP_CERT): PyPI may sit behind a proxy that only the host trusts. A file of
  # its own, since installing ca-certificates in the build rewrites /etc/ssl/certs.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-bundle.crt"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

standins() {
  local key root_tar
  # The root is cached, keyed by what goes into it.
  key="$(
    {
      echo "$suite $base_recipe"
      for file in $(host_sources) /etc/ssl/certs/ca-certificates.crt; do sha256sum "$file"; done
    } | sha256sum | cut -c1-16
  )"
  root_tar="$cache/base-$suite-$key.tar"
  if [[ ! -f "$root_tar" ]]; then
    local root="$cache/base-$suite-$key.root"
    rm -rf "$root" && mkdir -p "$root"
    make_base_root "$root"
    tar -C "$root" -cf "$root_tar.tmp" . && mv "$root_tar.tmp" "$root_tar"
    rm -rf "$root" "$root.log"
  fi
  local uv_bin="$cache/uv-$uv_version/uv"
  if [[ ! -x "$uv_bin" ]]; then
    local wheels
    wheels="$(mktemp -d)"
    .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
      -d "$wheels" "uv==$uv_version"
    mkdir -p "$(dirname "$uv_bin")"
    unzip -p "$wheels"/uv-"$uv_version"-*.whl "uv-$uv_version.data/scripts/uv" >"$uv_bin.tmp"
    chmod +x "$uv_bin.tmp" && mv "$uv_bin.tmp" "$uv_bin"
    rm -rf "$wheels"
  fi
  if [[ $engine == docker ]]; then
    docker import --change 'ENV PIP_CERT=/etc/ssl/host-ca-bundle.crt' "$root_tar" "$standin_base-$key"
    docker tag "$standin_base-$key" "$standin_base"
    tar -C "$(dirname "$uv_bin")" -c uv | docker import - "$standin_uv"
    return
  fi
  if ! bh inspect --type image "$standin_base-$key" >/dev/null 2>&1; then
    local ctr mnt
    ctr="$(bh from scratch)"
    mnt="$(bh mount "$ctr")"
    tar -C "$mnt" -xf "$root_tar"
    bh umount "$ctr" >/dev/null
    # pip inside the build trusts the same bundle as apt (the Dockerfile sets no PIP_CERT of its own).
    bh config --env PIP_CERT=/etc/ssl/host-ca-bundle.crt --cmd /bin/bash "$ctr"
    bh commit --quiet --rm "$ctr" "$standin_base-$key" >/dev/null
  fi
  bh tag "$standin_base-$key" "$standin_base"
  if ! bh inspect --type image "$standin_uv" >/dev/null 2>&1; then
    local ctr
    ctr="$(bh from scratch)"
    bh copy "$ctr" "$uv_bin" /uv >/dev/null
    bh commit --quiet --rm "$ctr" "$standin_uv" >/dev/null
  fi
}

pick_storage() {
  # overlay keeps each layer once (vfs copies the whole tree per layer: ~7 GB each here); it needs a kernel and a
  # sandbox that allow overlay mounts, which one trial mount shows.
  local probe
  probe="$(mktemp -d)"
  mkdir -p "$probe"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
    "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    storage=overlay
  fi
  rm -rf "$probe"
}

build_args=(--build-arg BAKE_MODELS=0)
[[ $engine == buildah ]] && pick_storage
if ((offline && !built)); then
  phase "stand-in base images ($suite, uv $uv_version)"
  standins
  phase_done "stand-in base images"
  build_args+=(--build-arg "BASE_IMAGE=$standin_base" --build-arg "UV_IMAGE=$standin_uv"
    --build-arg PYTHON_SOURCE=system --build-arg COMFYUI_SOURCE=wheel)
fi

# --- the build --------------------------------------------------------------------------------------------
if ((!built)); then
  label=$engine; [[ $engine == buildah ]] && label="buildah, $storage storage"
  phase "build ($label) $tag"
  if [[ $engine == docker ]]; then
    docker buildx build --load "${build_args[@]}" -t "$tag" .
  else
    bh build --isolation chroot --layers --pull=false "${build_args[@]}" -t "$tag" .
  fi
  phase_done "build"
fi

# --- inside the image -------------------------------------------------------------------------------------
status=0
.venv/bin/python -m scripts.image_smoke --engine "$engine" --storage "$storage" --image "$tag" "${timings[@]}" \
  || status=$?
printf '== image_check: %s in %d s\n' "$([[ $status == 0 ]] && echo passed || echo FAILED)" "$(($(date +%s) - started_all))" >&2
exit "$status"
