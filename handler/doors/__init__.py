"""The doors: each turns its kind of request into ``Generator.generate`` and an ``AlphaError`` into its
response, in one place. ``runpod`` is the product; ``alpha`` is the local debugging API."""
