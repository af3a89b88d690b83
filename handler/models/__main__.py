"""``python -m handler.models fetch|check`` (``handler.models.fetch``)."""

import sys

from handler.models.fetch import main

sys.exit(main())
