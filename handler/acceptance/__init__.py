"""The acceptance run: a deployed endpoint checked from outside (``python -m handler.acceptance``).

It sends a fixed set of prompts to RunPod's hosted API (``/run`` then ``/status``, or ``/runsync``), RunPod's
local API (``--rp_serve_api``) or the local alpha API, checks every acceptance criterion on each answer,
times it, and writes ``report.html`` and ``report.json``. Nothing on a job's path imports it.
"""
