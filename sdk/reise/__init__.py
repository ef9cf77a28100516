"""Reise: customer-journey tracking. The Python SDK (standard library only).

>>> import reise
>>> with reise.Client("wk_...", "http://127.0.0.1:8080", channel="pos") as client:
...     client.purchase("A-1001", 59.90, "EUR", user_id="card-4711")
"""

import logging as _logging

from reise._version import __version__
from reise.aio import AsyncClient
from reise.client import CHANNELS, LIBRARY, MAX_EVENT_BYTES, STAGES, Client
from reise.consumer import Stats
from reise.errors import (
    BatchRejected,
    ConfigurationError,
    DeliveryError,
    EventRejected,
    EventsDropped,
    ReiseError,
    ValidationError,
)
from reise.identity import user_hash

# A library logs; the application decides where it goes. Never print by default.
_logging.getLogger("reise").addHandler(_logging.NullHandler())

__all__ = [
    "CHANNELS",
    "LIBRARY",
    "MAX_EVENT_BYTES",
    "STAGES",
    "AsyncClient",
    "BatchRejected",
    "Client",
    "ConfigurationError",
    "DeliveryError",
    "EventRejected",
    "EventsDropped",
    "ReiseError",
    "Stats",
    "ValidationError",
    "__version__",
    "user_hash",
]
