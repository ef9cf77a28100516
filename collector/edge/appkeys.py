"""Typed application state keys shared by the app factory and the handlers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from collector.edge.authlimit import AuthFailures
from collector.edge.queryslots import QuerySlots
from collector.ingest.batcher import Batcher
from collector.ingest.ingestor import Ingestor
from collector.settings import Settings
from collector.store.clickhouse import Store
from collector.triggers.service import TriggerService

__all__ = ["AUTH_FAILURES", "BATCHER", "INGESTOR", "QUERY_SLOTS", "READERS", "READ_STORE", "SETTINGS", "STORE",
           "TRIGGERS"]

SETTINGS = web.AppKey("settings", Settings)
INGESTOR = web.AppKey("ingestor", Ingestor)  # the ingest hot path: the one key an ingestion request reads
STORE = web.AppKey("store", Store)
BATCHER = web.AppKey("batcher", Batcher)
READERS = web.AppKey("readers", ThreadPoolExecutor)
READ_STORE = web.AppKey("read_store", Store)  # analysts' queries: REISE_READ_DSN's read-only user, else STORE
AUTH_FAILURES = web.AppKey("auth_failures", AuthFailures)
QUERY_SLOTS = web.AppKey("query_slots", QuerySlots)
TRIGGERS = web.AppKey("triggers", TriggerService)  # webhooks and segments, when REISE_TRIGGERS is set
