"""``python -m handler.doors.runpod``: the RunPod worker as the supervisor starts it, early: it loads, then waits
for the supervisor's go on its stdin (``handler.startgate``) before it takes jobs. ``python -m handler`` is the
worker alone, in front of a ComfyUI that is already running."""

import sys

from handler.doors.runpod.worker import main

sys.exit(main(gated=True))
