"""Typed application state keys shared by the app factory and the handlers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from collector.attribution import AttributionRules
from collector.batcher import Batcher
from collector.dedup import RecentIds
from collector.ratelimit import RateLimiter
from collector.settings import Settings
from collector.stages import StageRules
from collector.store import Store

__all__ = ["ATTRIBUTION", "BATCHER", "LIMITER", "READERS", "RECENT_IDS", "RULES", "SETTINGS", "STORE"]

SETTINGS = web.AppKey("settings", Settings)
RULES = web.AppKey("rules", StageRules)
ATTRIBUTION = web.AppKey("attribution", AttributionRules)
STORE = web.AppKey("store", Store)
BATCHER = web.AppKey("batcher", Batcher)
RECENT_IDS = web.AppKey("recent_ids", RecentIds)
READERS = web.AppKey("readers", ThreadPoolExecutor)
LIMITER = web.AppKey("limiter", RateLimiter)
