"""The local alpha API door (aiohttp): the server, its file store and its OpenAPI document."""
