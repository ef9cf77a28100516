"""structlog set-up: JSON lines for machines, readable lines on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

__all__ = ["REQUEST_ID", "add_request_id", "configure_logging"]

# The id of the request being served, set and reset once per request by collector.edge.middleware
# (a ContextVar of its own: cheaper than structlog's bind/unbind of its context dictionary).
REQUEST_ID: ContextVar[str | None] = ContextVar("reise_request_id", default=None)


def add_request_id(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current request's id on the line."""
    rid = REQUEST_ID.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


def configure_logging(log_format: str = "auto", level: int = logging.INFO) -> None:
    """Configure structlog once for the process."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
