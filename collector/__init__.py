"""Reise collector: validates touchpoints, batches them and stores them in ClickHouse."""

__all__ = ["__version__"]

__version__ = "0.1.0"
