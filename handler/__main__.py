"""``python -m handler``: the RunPod worker. RunPod's local flags (--test_input, --rp_serve_api) apply."""

import sys

from handler.doors.runpod.worker import main

sys.exit(main())
