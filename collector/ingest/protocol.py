"""The wire protocol: Segment-shaped events validated and normalised into touchpoint rows."""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from collector.errors import EventRejected, EventWithoutConsent
from collector.identity.guards import DEFAULT_POLICY, LinkPolicy
from collector.ingest.attribution import AttributionRules
from collector.ingest.consent import refused_in
from collector.ingest.orders import signed_revenue
from collector.ingest.scopes import ALL_SCOPES, KeyScope, check_identity, check_scope
from collector.ingest.stages import CHANNELS, STAGE_RANK, STAGES, StageRules
from collector.store.schema import DEAD_LETTER_COLUMNS, TOUCHPOINT_COLUMNS

if TYPE_CHECKING:
    from collector.enrich.pipeline import Enricher
    from collector.ingest.redact import Redactor

__all__ = [
    "DEAD_LETTER_COLUMNS",
    "EVENT_TYPES",
    "LIBRARY_CHANNELS",
    "TOUCHPOINT_COLUMNS",
    "IngestContext",
    "Row",
    "anonymise_ip",
    "channel_of_words",
    "dead_letter_row",
    "normalise",
    "parse_time_ms",
]

MAX_FUTURE_MS = 24 * 3600 * 1000
MIN_EVENT_MS = 946_684_800_000  # 2000-01-01: no event of a journey is older (after clock-skew correction)
MAX_TIME_MS = 7_258_118_400_000  # 2200-01-01: any time sent (timestamp, sentAt) lies before it
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 512
MAX_REVENUE = 1e13
DEAD_LETTER_PAYLOAD_CHARS = 64 * 1024
DEFAULT_ATTRIBUTION = AttributionRules.load()

EVENT_TYPES = frozenset({"track", "identify", "alias", "page", "screen", "group"})
# Channel words client libraries send on their own (RudderStack: "server", "web", "mobile"; Segment's docs:
# "browser", "server", "mobile"; "sources" for cloud sources). They are not a Reise channel choice: the event's
# channel is found as if it named none, and the word is only the last hint (web, app or nothing).
LIBRARY_CHANNELS = {"server": "", "browser": "web", "mobile": "app", "web": "web", "sources": ""}
_NOT_ENRICHED: tuple[Any, ...] = ("", "", "", "", "", "", "", "", "", "", 0, 0, [], 1)  # enrich.NOT_ENRICHED
# context fields kept in typed columns (ip: truncated; userAgent, library, campaign, locale, timezone, app)
_TYPED_CONTEXT = frozenset({"ip", "userAgent", "library", "campaign", "locale", "timezone", "app"})

Row = tuple[Any, ...]  # a touchpoint or dead-letter row, in TOUCHPOINT_COLUMNS / DEAD_LETTER_COLUMNS order


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the collector knows about a request, shared by all of its events."""

    source: str
    received_ms: int
    rules: StageRules
    sent_at: Any = None
    channels: frozenset[str] | None = None  # the channels the write key may write; None: all
    default_channel: str = "other"
    ip_mode: str = "truncate"  # truncate (IPv4 /24, IPv6 /48), keep, or drop
    public: bool = False  # sent with a public key (browser, pixel): its own rate limit
    attribution: AttributionRules = DEFAULT_ATTRIBUTION  # classifies page views that name no channel
    identity: LinkPolicy = DEFAULT_POLICY  # which ids may key a journey (placeholders such as "guest" may not)
    scope: KeyScope = ALL_SCOPES  # the stages and revenue the key may send (REISE_KEY_SCOPES)
    verify_secret: str = ""  # the key's identity-verification secret (REISE_VERIFY_SECRETS); "": none
    client_ip: str = ""  # the connection's client address (collector.edge.clientip): context.ip when absent
    method: str = "POST"  # the HTTP method (HEAD is a machine's behaviour)
    prefetch: bool = False  # the request says it is a prefetch (Purpose, Sec-Purpose, X-Moz, X-Purpose)
    batch_context: Mapping[str, Any] | None = None  # a batch's own context: each event's fields win over it
    batch_integrations: Mapping[str, Any] | None = None  # a batch's own integrations, likewise
    enricher: Enricher | None = None  # device, bot, mail machine and place (None: not enriched)
    # Derived once per request from the fields above (not arguments), so no event pays for them again.
    kept_client_ip: str = field(init=False, repr=False, compare=False, default="")  # client_ip under ip_mode
    may_attribute: bool = field(init=False, repr=False, compare=False, default=True)  # the key may write web
    single_channel: bool = field(init=False, repr=False, compare=False, default=False)  # the key writes one
    behaviour: str = field(init=False, repr=False, compare=False, default="")  # request:HEAD / request:prefetch

    def __post_init__(self) -> None:
        channels = self.channels
        object.__setattr__(self, "kept_client_ip", anonymise_ip(self.client_ip, self.ip_mode))
        object.__setattr__(self, "may_attribute", channels is None or "web" in channels)
        object.__setattr__(self, "single_channel", channels is not None and len(channels) == 1)
        object.__setattr__(self, "behaviour", "request:HEAD" if self.method == "HEAD"
                           else "request:prefetch" if self.prefetch else "")


def parse_time_ms(value: Any, field: str) -> int:
    """Parse an ISO 8601 time into epoch milliseconds (naive times are UTC)."""
    if not isinstance(value, str) or not value:
        raise EventRejected(f"{field}: expected an ISO 8601 date string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EventRejected(f"{field}: not an ISO 8601 date: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        ms = int(moment.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        raise EventRejected(f"{field}: outside the years 1970 to 2199") from None
    if ms < 0:
        raise EventRejected(f"{field}: before 1970")
    if ms >= MAX_TIME_MS:
        raise EventRejected(f"{field}: after 2200-01-01")
    return ms


@lru_cache(maxsize=256)
def _sent_at_ms(value: str) -> int:
    """``sentAt`` in epoch milliseconds, remembered: every event of a batch carries the same one."""
    return parse_time_ms(value, "sentAt")


def _text(value: Any, field: str, limit: int = MAX_NAME_CHARS) -> str:
    """A short string field; numbers are accepted as ids, anything else is rejected."""
    if value.__class__ is str and len(value) <= limit:
        return value
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise EventRejected(f"{field}: expected a string")
    if len(text) > limit:
        raise EventRejected(f"{field}: longer than {limit} characters")
    return text


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventRejected(f"{field}: expected an object")
    return value


def _revenue(value: Any, field: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise EventRejected(f"{field}: expected a number")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise EventRejected(f"{field}: not a number: {value[:40]!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) >= MAX_REVENUE:
        raise EventRejected(f"{field}: expected a finite number below {MAX_REVENUE:.0e}")
    return round(float(value), 4)


def _named_channel(
    event: Mapping[str, Any], properties: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[str | None, str]:
    """The Reise channel the event names (None: none) and the library's hint, in the documented order.

    Top-level ``channel`` (a library word is no choice; anything else unknown is rejected), then
    ``properties.channel`` when it is a Reise channel, then ``context.channel`` when it is one and no library word.
    The answer depends on the three values only: short strings (and missing ones) are answered from a memo.
    """
    raw, in_properties, in_context = event.get("channel"), properties.get("channel"), context.get("channel")
    short = _CACHED_WORD_CHARS
    if (raw is None or (raw.__class__ is str and len(raw) <= short)) \
            and (in_properties is None or (in_properties.__class__ is str and len(in_properties) <= short)) \
            and (in_context is None or (in_context.__class__ is str and len(in_context) <= short)):
        return channel_of_words(raw, in_properties, in_context)
    return _channel_of(raw, in_properties, in_context)


def _channel_of(raw: Any, in_properties: Any, in_context: Any) -> tuple[str | None, str]:
    """``_named_channel`` over the three values (top level, properties, context)."""
    hint = ""
    if raw is not None:
        if not isinstance(raw, str):
            raise EventRejected("channel: expected a string")
        word = raw.lower()
        if word in LIBRARY_CHANNELS:
            hint = LIBRARY_CHANNELS[word]
        elif word in CHANNELS:
            return word, hint
        else:
            raise EventRejected(f"channel: must be one of {', '.join(sorted(CHANNELS))}, got {raw[:40]!r}")
    named = in_properties
    if named.__class__ is str and named.lower() in CHANNELS:
        return named.lower(), hint
    named = in_context
    if named.__class__ is str and named.lower() in CHANNELS and named.lower() not in LIBRARY_CHANNELS:
        return named.lower(), hint
    if not hint and named.__class__ is str:
        hint = LIBRARY_CHANNELS.get(named.lower(), "")
    return None, hint


_CACHED_WORD_CHARS = 64  # channel values up to this long are remembered (longer ones: worked out each time)
# Senders repeat a handful of channel words: each combination is resolved once (a refusal is never remembered).
channel_of_words = lru_cache(maxsize=1024)(_channel_of)  # public: the pixel's fast row (ingest.pixelrow)


def _app(value: Any) -> str:
    """``name/version`` of the app, from ``context.app`` (mobile SDKs)."""
    if not isinstance(value, dict):
        return ""
    name = _text(value.get("name"), "context.app.name") if isinstance(value.get("name"), str) else ""
    version = value.get("version")
    return f"{name}/{version[:64]}" if name and isinstance(version, str) else name


def anonymise_ip(ip: str, mode: str) -> str:
    """Apply the IP policy: ``truncate`` zeroes the host part (IPv4 /24, IPv6 /48), ``drop`` removes it."""
    if not ip or mode == "keep":
        return ip
    if mode == "drop":
        return ""
    network, dot, host = ip.rpartition(".")
    if dot and network.count(".") == 2 and host.isdigit() and network.replace(".", "").isdigit() \
            and ".." not in network and not network.startswith("."):
        return f"{network}.0"  # dotted IPv4, the common case: no need for the (slow) ipaddress module
    return _truncated(ip) if len(ip) <= _CACHED_IP_CHARS else _truncate(ip)


def _truncate(ip: str) -> str:
    """The address with its host part zeroed (IPv4 /24, IPv6 /48), through ``ipaddress``; "" for no address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""  # not an address: keep nothing rather than something unexpected
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


_CACHED_IP_CHARS = 64  # context.ip's limit: longer text (dead-letter payloads) is truncated uncached
# A visitor's events carry the same address: each distinct IPv6 one goes through ipaddress once.
_truncated = lru_cache(maxsize=16_384)(_truncate)


def _first(*values: Any) -> Any:
    """The first value that is neither missing nor an empty string."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


_NO_UTM = ("", "", "", "", "")


def _utm(value: Any) -> tuple[str, str, str, str, str]:
    """UTM fields from ``context.campaign``: source, medium, name, term, content."""
    utm = value if value.__class__ is dict else _object(value, "context.campaign")
    get = utm.get
    source, medium, name, term, content = get("source"), get("medium"), get("name"), get("term"), get("content")
    if (source is None or (source.__class__ is str and len(source) <= MAX_NAME_CHARS)) \
            and (medium is None or (medium.__class__ is str and len(medium) <= MAX_NAME_CHARS)) \
            and (name is None or (name.__class__ is str and len(name) <= MAX_NAME_CHARS)) \
            and (term is None or (term.__class__ is str and len(term) <= MAX_NAME_CHARS)) \
            and (content is None or (content.__class__ is str and len(content) <= MAX_NAME_CHARS)):
        return (source or "", medium or "", name or "", term or "", content or "")  # plain strings or none
    return (
        _text(source, "context.campaign.source"),
        _text(medium, "context.campaign.medium"),
        _text(name, "context.campaign.name"),
        _text(term, "context.campaign.term"),
        _text(content, "context.campaign.content"),
    )


def _library(value: Any) -> str:
    """``name/version`` of the sending library, from ``context.library``."""
    if value is None:
        return ""
    library = value if value.__class__ is dict else _object(value, "context.library")
    name = library.get("name")
    if name.__class__ is not str or len(name) > MAX_NAME_CHARS:
        name = _text(name, "context.library.name")
    if not name:
        return ""
    version = library.get("version")
    if version.__class__ is not str or len(version) > MAX_NAME_CHARS:
        version = _text(version, "context.library.version")
    return f"{name}/{version}"


def normalise(event: Any, default_type: str | None, ctx: IngestContext) -> tuple[Any, ...]:
    """Validate one event and return its touchpoint row (in TOUCHPOINT_COLUMNS order).

    Times in the row are epoch seconds with millisecond fractions, as ClickHouse reads them from JSON.
    This runs for every event on the event loop: a field is read once, plain short strings take the inline
    fast path of ``_text`` (anything else goes through it, in the same order, with the same errors), and what
    is the same for the whole request was worked out when its IngestContext was made.
    """
    if not isinstance(event, dict):
        raise EventRejected("event: expected a JSON object")
    get = event.get
    type_ = default_type or get("type")
    if not isinstance(type_, str) or type_ not in EVENT_TYPES:
        raise EventRejected(f"type: must be one of {', '.join(sorted(EVENT_TYPES))}")
    value = get("properties")
    properties = value if value.__class__ is dict else _object(value, "properties")
    value = get("traits")
    traits = value if value.__class__ is dict else _object(value, "traits")
    value = get("context")
    context = value if value.__class__ is dict else _object(value, "context")
    if ctx.batch_context:
        context = {**ctx.batch_context, **context}
    value = get("integrations")
    integrations = value if value.__class__ is dict else _object(value, "integrations")
    if ctx.batch_integrations:
        integrations = {**ctx.batch_integrations, **integrations}
    if ("consent" in context or "consent" in event or "consentManagement" in context) and refused_in(event, context):
        raise EventWithoutConsent("consent: the person did not consent; not stored")
    cget = context.get
    pget = properties.get

    value = get("userId")
    if value is None or value == "":
        value = get("customer_id")
    customer_id = value if value.__class__ is str and len(value) <= MAX_ID_CHARS else \
        _text(value, "userId", MAX_ID_CHARS)
    if type_ == "alias":
        anonymous_id = _text(get("previousId"), "previousId", MAX_ID_CHARS)
        if not customer_id or not anonymous_id:
            raise EventRejected("previousId and userId: alias needs both")
    else:
        value = get("anonymousId")
        anonymous_id = value if value.__class__ is str and len(value) <= MAX_ID_CHARS else \
            _text(value, "anonymousId", MAX_ID_CHARS)
    if not customer_id and not anonymous_id:
        raise EventRejected("userId or anonymousId: one of them is required")
    if ctx.verify_secret:
        check_identity(event, context, secret=ctx.verify_secret, alias=type_ == "alias", customer_id=customer_id,
                       anonymous_id=anonymous_id)

    if type_ == "track":
        value = get("event")
        name = value if value.__class__ is str and len(value) <= MAX_NAME_CHARS else _text(value, "event")
        if not name:
            raise EventRejected("event: a track call needs an event name")
    else:
        value = get("name")
        if value is None or value == "":
            value = pget("name")
        name = value if value.__class__ is str and len(value) <= MAX_NAME_CHARS else _text(value, "name")

    value = get("messageId")
    message_id = (value if value.__class__ is str and len(value) <= MAX_ID_CHARS else
                  _text(value, "messageId", MAX_ID_CHARS)) or uuid.uuid4().hex
    received = ctx.received_ms
    raw_time = get("timestamp")
    time_field = "timestamp"
    if raw_time is None and get("originalTimestamp") is not None:
        raw_time, time_field = event["originalTimestamp"], "originalTimestamp"
    original = parse_time_ms(raw_time, time_field) if raw_time is not None else received
    raw_sent = get("sentAt", ctx.sent_at)
    if raw_sent is None:
        sent_at = None
    else:
        sent_at = _sent_at_ms(raw_sent) if raw_sent.__class__ is str else parse_time_ms(raw_sent, "sentAt")
    corrected = original + (received - sent_at) if sent_at is not None and raw_time is not None else original
    if corrected - received > MAX_FUTURE_MS:
        raise EventRejected("timestamp: more than a day in the future after clock-skew correction")
    if corrected < MIN_EVENT_MS:
        raise EventRejected("timestamp: before 2000-01-01 after clock-skew correction")

    # A page view naming no channel is attributed from its URL and referrer, when its key may write web.
    named, hint = _named_channel(event, properties, context)
    attributed = type_ == "page" and named is None and ctx.may_attribute
    if attributed:
        channel = "web"
    elif named is not None:
        channel = named
    else:
        channel = ctx.default_channel if ctx.single_channel else hint or ctx.default_channel
    channels = ctx.channels
    if channels is not None and channel not in channels:
        allowed = ", ".join(sorted(channels))
        raise EventRejected(f"channel: this write key may not write {channel!r} (only {allowed})")
    explicit_stage = get("stage")
    if explicit_stage is not None and explicit_stage != "":
        if not isinstance(explicit_stage, str) or explicit_stage not in STAGE_RANK:
            raise EventRejected(f"stage: must be one of {', '.join(STAGES)}")
    else:
        explicit_stage = None
    value = cget("campaign")
    utm = _utm(value) if value is not None else _NO_UTM
    value = cget("page")
    page = value if value.__class__ is dict else _object(value, "context.page")
    value = page.get("url")
    if value is None or value == "":
        value = pget("url")
    page_url = value if value.__class__ is str and len(value) <= 4096 else _text(value, "context.page.url", 4096)
    value = page.get("referrer")
    if value is None or value == "":
        value = pget("referrer")
    referrer = value if value.__class__ is str and len(value) <= 4096 else \
        _text(value, "context.page.referrer", 4096)
    traffic_class = traffic_source = ""
    if attributed:
        found = ctx.attribution.attribute(page_url, referrer, utm)
        channel, utm, traffic_class, traffic_source = (found.channel, found.utm, found.traffic_class,
                                                       found.traffic_source)
    stage = explicit_stage or ctx.rules.stage_for(type_, name, channel)
    value = get("revenue")
    if value is None or value == "":
        value = pget("revenue")
        if value is None or value == "":
            value = pget("total")
    revenue = 0.0 if value is None or value == "" else \
        signed_revenue(name, _revenue(value, "properties.revenue"))
    scope = ctx.scope
    if (stage and stage not in scope.stages) or (revenue and not scope.revenue):
        check_scope(scope, stage, revenue)
    value = get("currency")
    if value is None or value == "":
        value = pget("currency")
    currency = value if value.__class__ is str and len(value) <= 8 else _text(value, "properties.currency", 8)
    utm_source, utm_medium, utm_campaign, utm_term, utm_content = utm
    value = get("campaign")
    if value is None or value == "":
        value = pget("campaign")
        if value is None or value == "":
            value = utm_campaign
    campaign = value if value.__class__ is str and len(value) <= MAX_NAME_CHARS else \
        _text(value, "properties.campaign")
    value = get("store_id")
    if value is None or value == "":
        value = pget("store_id")
        if value is None or value == "":
            value = cget("store_id")
    store_id = value if value.__class__ is str and len(value) <= MAX_ID_CHARS else \
        _text(value, "properties.store_id", MAX_ID_CHARS)
    value = get("order_id")
    if value is None or value == "":
        value = pget("order_id")
        if value is None or value == "":
            value = pget("orderId")
    order_id = value if value.__class__ is str and len(value) <= MAX_ID_CHARS else \
        _text(value, "properties.order_id", MAX_ID_CHARS)
    value = get("groupId")
    if value is None or value == "":
        value = cget("groupId")
    group_id = value if value.__class__ is str and len(value) <= MAX_ID_CHARS else \
        _text(value, "groupId", MAX_ID_CHARS)
    if type_ == "page" or type_ == "screen":
        value = get("category")
        if value is None or value == "":
            value = pget("category")
        category = value if value.__class__ is str and len(value) <= MAX_NAME_CHARS else _text(value, "category")
    else:
        category = ""
    value = cget("ip")
    context_ip = value if value.__class__ is str and len(value) <= 64 else _text(value, "context.ip", 64)
    value = cget("userAgent")
    user_agent = value if value.__class__ is str and len(value) <= 1024 else \
        _text(value, "context.userAgent", 1024)
    journey_id = ctx.identity.journey_id(customer_id, anonymous_id)
    full_ip = context_ip or ctx.client_ip
    enricher = ctx.enricher
    enriched = _NOT_ENRICHED if enricher is None else enricher.live(
        type_, channel, name, user_agent, full_ip, context, journey_id, campaign, page_url, corrected, properties,
        ctx.behaviour)
    # after enrichment used the full address; the connection's address was truncated once for the request
    kept_ip = anonymise_ip(context_ip, ctx.ip_mode) if context_ip else ctx.kept_client_ip
    kept_context = {} if _TYPED_CONTEXT.issuperset(context) else \
        {k: v for k, v in context.items() if k not in _TYPED_CONTEXT}  # issuperset: in C, for the common case
    library = _library(cget("library"))
    value = cget("locale")
    locale = _text(value, "context.locale", 64) if value.__class__ is str else ""
    value = cget("timezone")
    timezone = _text(value, "context.timezone", 64) if value.__class__ is str else ""
    value = cget("app")
    app = _app(value) if value is not None else ""

    return (  # noqa: RUF005 - then the enrichment columns: one tuple concatenation is cheaper than unpacking
        message_id,
        type_,
        name,
        journey_id,
        customer_id,
        anonymous_id,
        channel,
        stage,
        STAGE_RANK.get(stage, 0),
        corrected / 1000,
        original / 1000,
        None if sent_at is None else sent_at / 1000,
        received / 1000,
        revenue,
        currency.upper(),
        campaign,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        utm_content,
        store_id,
        order_id,
        ctx.source,
        page_url,
        referrer,
        kept_ip,
        user_agent,
        library,
        properties,  # ClickHouse stores non-string values as their JSON text (see store.clickhouse.INSERT_SETTINGS)
        traits,
        traffic_class,
        traffic_source,
        group_id,
        category,
        locale,
        timezone,
        app,
        kept_context,
        integrations,
    ) + enriched


def dead_letter_row(
    *, ctx: IngestContext, endpoint: str, index: int, event: Any, reason: str, redactor: Redactor
) -> tuple[Any, ...]:
    """A dead-letter row for a rejected event or request (in DEAD_LETTER_COLUMNS order).

    The payload is kept as the redactor leaves it: secrets redacted, IP addresses treated as on touchpoints.
    """
    fields = event if isinstance(event, dict) else {}
    payload = redactor.payload(event, endpoint, DEAD_LETTER_PAYLOAD_CHARS)
    return (
        ctx.received_ms / 1000,
        ctx.source,
        endpoint,
        index,
        str(fields.get("messageId", ""))[:MAX_ID_CHARS],
        str(fields.get("userId", ""))[:MAX_ID_CHARS],
        str(fields.get("anonymousId", ""))[:MAX_ID_CHARS],
        reason,
        payload[:DEAD_LETTER_PAYLOAD_CHARS],
    )
