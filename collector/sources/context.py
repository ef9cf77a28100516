"""The ingest context of a configured source: its name as the source, its channels, rate limit and write scope."""

from __future__ import annotations

from dataclasses import replace

from collector.ingest.ingestor import Ingestor
from collector.ingest.protocol import IngestContext
from collector.ingest.scopes import ALL_SCOPES, PUBLIC_SCOPES
from collector.settings import WriteKey
from collector.sources.config import Source

__all__ = ["source_context"]


def source_context(ingestor: Ingestor, source: Source, received_ms: int) -> IngestContext:
    """What every event of one request of the source shares.

    The scope is the source's own (``scope`` in REISE_SOURCES), else its REISE_KEY_SCOPES entry, else a public
    key's for Snowplow (no purchases, no revenue: trackers are unsigned) and everything for signed webhooks.
    Identity verification (``userHash``) does not apply: a webhook is signed, a tracker cannot compute it.
    """
    settings = ingestor.settings
    ctx = ingestor.context(WriteKey(source=source.name, key="", channels=source.channels), received_ms)
    scope = source.scope or settings.key_scopes.get(source.name) or (PUBLIC_SCOPES if source.public else ALL_SCOPES)
    return replace(ctx, public=source.public, scope=scope, verify_secret="")
