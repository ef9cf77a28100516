"""The wire limits of the collector, defined once (the SDK mirrors them; a test checks they agree)."""

from __future__ import annotations

__all__ = ["MAX_BATCH_BYTES", "MAX_EVENT_BYTES"]

MAX_EVENT_BYTES = 32 * 1024  # one event; a larger one alone is rejected
MAX_BATCH_BYTES = 500 * 1024  # one request body, uncompressed (Segment's limit)
