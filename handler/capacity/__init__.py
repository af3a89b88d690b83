"""The capacity planner: an endpoint's settings, traffic and measured job times in; queue wait, latency, cold
starts, workers and cost out (``python -m handler.capacity simulate`` / ``recommend``).

A tool in a room of its own, beside the acceptance run: it reads the acceptance run's ``report.json`` as a file
and imports nothing of the worker, and nothing on a job's path imports it. Its plotting library is imported only
when a plot is asked for, so the image, which does not install it, never needs it.
"""
