"""The handler file RunPod's Hub looks for. The worker is the ``handler`` package: the image runs it through
``./bootstrap.sh`` (ComfyUI started and checked first), and ``python -m handler`` runs it in a checkout. This
file runs the same worker, for tools that start a handler file (ComfyUI must already be running)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handler.doors.runpod.worker import main

if __name__ == "__main__":
    sys.exit(main())
