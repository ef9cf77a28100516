"""Version of the reise SDK."""

__version__ = "0.1.0"
