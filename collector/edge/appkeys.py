"""Typed application state keys shared by the app factory and the handlers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from collector.ingest.batcher import Batcher
from collector.ingest.ingestor import Ingestor
from collector.settings import Settings
from collector.store.clickhouse import Store

__all__ = ["BATCHER", "INGESTOR", "READERS", "SETTINGS", "STORE"]

SETTINGS = web.AppKey("settings", Settings)
INGESTOR = web.AppKey("ingestor", Ingestor)  # the ingest hot path: the one key an ingestion request reads
STORE = web.AppKey("store", Store)
BATCHER = web.AppKey("batcher", Batcher)
READERS = web.AppKey("readers", ThreadPoolExecutor)
