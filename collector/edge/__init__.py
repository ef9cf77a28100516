"""The HTTP edge: the aiohttp application, its handlers and middlewares; the only package that imports aiohttp."""
