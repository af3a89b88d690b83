"""LayerDiffuse Alpha API: a RunPod worker that turns a prompt into a transparent PNG via ComfyUI."""

__version__ = "0.1.0"
