"""The client's options, typed: what ``Client`` and ``AsyncClient`` accept, and what they pass down.

``ClientOptions`` names every keyword option of ``Client`` with its type, so that
``AsyncClient(key, host, **options)`` is checked like ``Client`` itself. ``QueueLimits`` and
``SendPolicy`` are the frozen slices the client hands to its queue and to its sender thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from reise.errors import DeliveryError

__all__ = ["ClientOptions", "ErrorCallback", "Overflow", "QueueLimits", "SendPolicy"]

Overflow = Literal["drop_newest", "drop_oldest", "block"]
ErrorCallback = Callable[[DeliveryError], None]


class ClientOptions(TypedDict, total=False):
    """Every keyword option of ``Client`` (the README's SDK table documents each)."""

    channel: str | None
    store_id: str | None
    context: Mapping[str, Any] | None
    on_error: ErrorCallback | None
    batch_size: int
    batch_bytes: int
    flush_interval: float
    max_queue_size: int
    max_queue_bytes: int
    overflow: Overflow
    block_timeout: float
    spool_path: str | os.PathLike[str] | None
    spool_max_events: int
    spool_sync: Literal["normal", "full"]
    timeout: float
    gzip_level: int
    max_retries: int | None
    backoff_base: float
    max_backoff: float
    max_retry_after: float
    exit_timeout: float
    link_key: str | None
    public_key: str | None


@dataclass(frozen=True)
class QueueLimits:
    """How the queue behaves when full, and when it wakes the sender."""

    overflow: Overflow
    block_timeout: float  # seconds a call may wait for room with overflow="block"
    flush_at: int  # events queued that wake the sender at once
    flush_bytes: int  # bytes queued that wake the sender at once


@dataclass(frozen=True)
class SendPolicy:
    """How the sender thread batches and retries."""

    max_batch_events: int
    max_batch_bytes: int
    flush_interval: float
    max_retries: int | None  # None: retry until shutdown
    backoff_base: float
    max_backoff: float
    max_retry_after: float
