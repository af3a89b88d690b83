"""``python -m handler.workflow check FILE... [--comfyui URL]`` (``handler.workflow.check``)."""

import sys

from handler.workflow.check import main

sys.exit(main())
