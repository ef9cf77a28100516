"""The columns of the tables the collector writes, in the order rows are built (see migrations/)."""

from __future__ import annotations

__all__ = ["DEAD_LETTER_COLUMNS", "LINK_COLUMNS", "TABLE_COLUMNS", "TOUCHPOINT_COLUMNS"]

TOUCHPOINT_COLUMNS: tuple[str, ...] = (
    "message_id", "type", "event", "journey_id", "customer_id", "anonymous_id", "channel", "stage",
    "stage_rank", "timestamp", "original_timestamp", "sent_at", "received_at", "revenue", "currency",
    "campaign", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "store_id",
    "order_id", "source", "page_url", "referrer", "ip", "user_agent", "library", "properties", "traits",
    "traffic_class", "traffic_source",
    # migrations/0012_enrichment.sql: Segment fields kept, then the enrichments (collector.enrich.pipeline)
    "group_id", "category", "locale", "timezone", "app", "context", "integrations",
    "browser", "browser_version", "os", "os_version", "device_type", "device_brand", "device_model",
    "country", "region", "city", "bot", "machine", "flag_reasons", "in_journey",
)  # fmt: skip

DEAD_LETTER_COLUMNS: tuple[str, ...] = (
    "received_at", "source", "endpoint", "batch_index", "message_id", "customer_id", "anonymous_id",
    "reason", "payload",
)  # fmt: skip

# identity links as spooled and as kept in identity_links once the identity resolver accepted them
LINK_COLUMNS: tuple[str, ...] = ("anonymous_id", "customer_id", "linked_at", "message_id", "source")

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "touchpoints": TOUCHPOINT_COLUMNS, "dead_letters": DEAD_LETTER_COLUMNS, "identity_links": LINK_COLUMNS,
}
