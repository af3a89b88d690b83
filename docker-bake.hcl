# docker buildx bake: the three images a release pushes, from the one Dockerfile (DEPLOYMENT.md, "Build
# and push"). `docker buildx bake` builds all; `docker buildx bake baked`, `volume` or `layers` one of them.
#
#   IMAGE=<registry>/<name> VERSION=0.1.0 docker buildx bake --push
#
# The model tokens are BuildKit secrets read from the environment (CIVITAI_TOKEN, HF_TOKEN; an unset
# one means no token); they never reach a layer. tests/unit/test_bake.py checks that the targets'
# arguments and secrets are the Dockerfile's own.

variable "IMAGE" {
  # <registry>/<name>; the release workflow sets it from repository variables.
  default = "layerdiffuse-alpha"
}

variable "VERSION" {
  # The image tag: the release's version (pyproject.toml's by default).
  default = "0.1.0"
}

variable "LAYER_MODES" {
  # Layer modes whose files the baked image also holds: "foreground", "background" or both, comma-separated;
  # empty (default): none. DEPLOYMENT.md, "Layer modes".
  default = ""
}

group "default" {
  targets = ["baked", "volume", "layers"]
}

# What both images share; not built on its own.
target "_common" {
  context    = "."
  dockerfile = "Dockerfile"
  platforms  = ["linux/amd64"]
  secret = [
    "id=civitai_token,env=CIVITAI_TOKEN",
    "id=hf_token,env=HF_TOKEN",
  ]
}

# The weights baked in (~17-19 GB): the default endpoint image.
target "baked" {
  inherits = ["_common"]
  args = {
    BAKE_MODELS = "1"
    LAYER_MODES = "${LAYER_MODES}"
  }
  tags = ["${IMAGE}:${VERSION}"]
}

# No weights: the worker reads them from a RunPod network volume (DEPLOYMENT.md, "Network-volume variant").
target "volume" {
  inherits = ["_common"]
  args = {
    BAKE_MODELS = "0"
  }
  tags = ["${IMAGE}:${VERSION}-volume"]
}

# The weights and both layer modes' files (+~5.7 GB: foreground 4.3 GB, background 1.4 GB, as their sources list
# them): the image for an endpoint that offers `mode: "foreground"` and `"background"` (DEPLOYMENT.md, "Layer modes").
target "layers" {
  inherits = ["_common"]
  args = {
    BAKE_MODELS = "1"
    LAYER_MODES = "foreground,background"
  }
  tags = ["${IMAGE}:${VERSION}-layers"]
}
