"""Every webhook provider by its kind (the ``kind`` of a source in ``REISE_SOURCES``)."""

from __future__ import annotations

from collections.abc import Mapping

from collector.sources import mailgun, mapped, meta, postmark, sendgrid, shopify, square
from collector.sources.webhook import Provider

__all__ = ["PROVIDERS"]

PROVIDERS: Mapping[str, Provider] = {
    "sendgrid": sendgrid.PROVIDER,
    "mailgun": mailgun.PROVIDER,
    "postmark": postmark.PROVIDER,
    "shopify": shopify.PROVIDER,
    "square": square.PROVIDER,
    "meta": meta.PROVIDER,
    "mapped": mapped.PROVIDER,
}
