"""Model files, offline: the manifest, the downloader, the fetch command (``python -m handler.models``) and
the random-weight test models (``python -m handler.models.testmodels``)."""
