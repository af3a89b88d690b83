"""The API-format workflow contract: load and apply (``graph``), the offline rules (``rules``), the rules
against a running ComfyUI (``online``) and the ``check`` command (``python -m handler.workflow check``)."""
