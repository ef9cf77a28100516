"""Typed application state keys shared by the app factory and the handlers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from collector.ingest.attribution import AttributionRules
from collector.ingest.batcher import Batcher
from collector.ingest.dedup import RecentIds
from collector.ingest.ratelimit import RateLimiter
from collector.ingest.stages import StageRules
from collector.settings import Settings
from collector.store.clickhouse import Store

__all__ = ["ATTRIBUTION", "BATCHER", "LIMITER", "READERS", "RECENT_IDS", "RULES", "SETTINGS", "STORE"]

SETTINGS = web.AppKey("settings", Settings)
RULES = web.AppKey("rules", StageRules)
ATTRIBUTION = web.AppKey("attribution", AttributionRules)
STORE = web.AppKey("store", Store)
BATCHER = web.AppKey("batcher", Batcher)
RECENT_IDS = web.AppKey("recent_ids", RecentIds)
READERS = web.AppKey("readers", ThreadPoolExecutor)
LIMITER = web.AppKey("limiter", RateLimiter)
