"""Where the checkout is: paths that modules need without the settings."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
