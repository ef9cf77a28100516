"""The HTTP edge: the aiohttp application, its handlers and their wrapper; the only package that imports aiohttp."""
