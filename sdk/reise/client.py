"""The client: validates and serialises a call in the caller's thread, queues the bytes.

Everything slow (compression, HTTP, retries) happens in the background consumer.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import decimal
import functools
import logging
import math
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from reise import _json
from reise import links as _links
from reise._ids import new_message_id
from reise._version import __version__
from reise.consumer import Consumer, Stats
from reise.errors import ConfigurationError, EventsDropped, ValidationError
from reise.options import ErrorCallback, Overflow, QueueLimits, SendPolicy
from reise.queue import OVERFLOW_POLICIES, EventQueue, MemoryQueue, SqliteSpool
from reise.request import Transport

__all__ = ["CHANNELS", "LIBRARY", "MAX_BATCH_BYTES", "MAX_EVENT_BYTES", "STAGES", "Client"]

log = logging.getLogger("reise")

CHANNELS = frozenset({"web", "pos", "email", "social", "ads", "sms", "app", "support", "other"})
STAGES = frozenset({"awareness", "consideration", "purchase", "retention", "advocacy"})
LIBRARY: dict[str, str] = {"name": "reise-python", "version": __version__}
MAX_EVENT_BYTES = 32 * 1024  # the collector's limit per event
MAX_BATCH_BYTES = 500 * 1024  # the collector's limit per batch, uncompressed
_ENVELOPE = 96  # '{"batch":[', '],"sentAt":"...."}' and slack
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_UTC = _dt.timezone.utc
_dumps_event = _json.dumps_event
_time = time.time
_second: tuple[int, str] = (-1, "")  # (unix second, its ISO prefix); replaced atomically


def _now_iso() -> str:
    """Now as ISO 8601 UTC with microseconds; formats the date part once a second."""
    global _second
    t = _time()
    s = int(t)
    sec, prefix = _second
    if s != sec:
        prefix = _dt.datetime.fromtimestamp(s, _UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (s, prefix)
    return f"{prefix}.{int((t - s) * 1e6):06d}+00:00"

_live_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_live_clients):
        client._after_fork_child()


if hasattr(os, "register_at_fork"):  # pragma: no branch
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _id(value: object, name: str) -> str:
    """Validate an id: a non-empty str, or an int (turned into str)."""
    if type(value) is str:
        if value:
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(f"{name} must be a non-empty str (or int), got {value!r}")


def _mapping(value: object, name: str) -> dict[str, Any]:
    if type(value) is dict:
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise ValidationError(f"{name} must be a dict, got {type(value).__name__}")


def _text(value: object, name: str) -> str:
    if type(value) is str or isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(f"{name} must be a str, got {type(value).__name__}")


def _timestamp(value: object) -> str:
    if not isinstance(value, _dt.datetime):
        raise ValidationError(f"timestamp must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError("timestamp must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return value.isoformat()


def _channel(value: object) -> str:
    if isinstance(value, str) and value in CHANNELS:
        return str(value)
    raise ValidationError(f"channel must be one of {sorted(CHANNELS)}, got {value!r}")


def _stage(value: object) -> str:
    if isinstance(value, str) and value in STAGES:
        return str(value)
    raise ValidationError(f"stage must be one of {sorted(STAGES)}, got {value!r}")


def _revenue(value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        raise ValidationError(f"revenue must be a number, got {type(value).__name__}")
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"revenue must be finite, got {value!r}")
    return value


def _at_exit(ref: weakref.ref[Client]) -> None:
    client = ref()
    if client is not None and not client._closed:
        client.shutdown(client.exit_timeout)


class Client:
    """Tracks events to a Reise (or any Segment-compatible) collector without blocking.

    Calls validate and serialise at once in the caller's thread (a bad argument raises
    ``ValidationError`` there) and return the event's ``messageId``; a background thread
    batches, compresses, sends and retries. Use as a context manager, or call
    ``shutdown()``; pending events are also flushed at interpreter exit.
    """

    def __init__(
        self,
        write_key: str,
        host: str,
        *,
        channel: str | None = None,
        store_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        on_error: ErrorCallback | None = None,
        batch_size: int = 1000,
        batch_bytes: int = 480_000,
        flush_interval: float = 0.5,
        max_queue_size: int = 1_000_000,
        max_queue_bytes: int = 512 * 1024 * 1024,
        overflow: Overflow = "drop_newest",
        block_timeout: float = 0.1,
        spool_path: str | os.PathLike[str] | None = None,
        spool_max_events: int = 10_000_000,
        spool_sync: Literal["normal", "full"] = "normal",
        timeout: float = 10.0,
        gzip_level: int = 1,
        max_retries: int | None = None,
        backoff_base: float = 0.25,
        max_backoff: float = 10.0,
        max_retry_after: float = 300.0,
        exit_timeout: float = 5.0,
        link_key: str | None = None,
        public_key: str | None = None,
    ) -> None:
        """Create a client; see the README for every option. Starts the sender thread."""
        if not isinstance(write_key, str) or not write_key:
            raise ConfigurationError("write_key must be a non-empty str")
        if not isinstance(host, str) or not host:
            raise ConfigurationError("host must be a URL such as http://127.0.0.1:8080")
        if overflow not in OVERFLOW_POLICIES:
            raise ConfigurationError(f"overflow must be one of {OVERFLOW_POLICIES}")
        if spool_sync not in ("normal", "full"):
            raise ConfigurationError("spool_sync must be 'normal' or 'full'")
        if batch_size < 1:
            raise ConfigurationError("batch_size must be >= 1")
        if not MAX_EVENT_BYTES <= batch_bytes <= MAX_BATCH_BYTES - _ENVELOPE:
            raise ConfigurationError(
                f"batch_bytes must be within {MAX_EVENT_BYTES}..{MAX_BATCH_BYTES - _ENVELOPE}")
        if flush_interval <= 0 or timeout <= 0:
            raise ConfigurationError("flush_interval and timeout must be > 0")
        if max_queue_size < 1 or max_queue_bytes < MAX_EVENT_BYTES:
            raise ConfigurationError("max_queue_size must be >= 1, max_queue_bytes >= 32 KiB")
        if on_error is not None and not callable(on_error):
            raise ConfigurationError("on_error must be callable")
        try:
            self._channel = _channel(channel) if channel is not None else None
            self._store_id = _text(store_id, "store_id") if store_id is not None else None
            base_ctx = dict(_mapping(context, "context")) if context is not None else {}
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from exc
        base_ctx["library"] = LIBRARY
        self._context: dict[str, Any] = base_ctx
        try:
            self._context_json = _json.dumps(base_ctx).decode()
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"context is not JSON-serialisable: {exc}") from exc
        self.write_key = write_key
        self.host = host
        self.on_error = on_error
        self.exit_timeout = exit_timeout
        self.link_key = link_key  # signs click_url() links (one of REISE_LINK_KEYS)
        self.public_key = public_key or (write_key if write_key.startswith("pk_") else None)
        self._send_policy = SendPolicy(
            max_batch_events=batch_size, max_batch_bytes=batch_bytes, flush_interval=flush_interval,
            max_retries=max_retries, backoff_base=backoff_base, max_backoff=max_backoff,
            max_retry_after=max_retry_after)
        try:
            self._transport = Transport(host, write_key, timeout=timeout, gzip_level=gzip_level)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        limits = QueueLimits(overflow=overflow, block_timeout=block_timeout, flush_at=batch_size,
                             flush_bytes=batch_bytes)
        self._queue: EventQueue
        if spool_path is not None:
            try:
                self._queue = SqliteSpool(os.fspath(spool_path), sync=spool_sync,
                                          max_events=spool_max_events,
                                          max_bytes=1 << 62, limits=limits)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigurationError(f"cannot open spool {spool_path!s}: {exc}") from exc
        else:
            self._queue = MemoryQueue(max_events=max_queue_size, max_bytes=max_queue_bytes,
                                      limits=limits)
        self._put = self._queue.put
        self.stats_counters = Stats()
        self._start_lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._closed = False
        self._warned_closed = False
        self._atexit = functools.partial(_at_exit, weakref.ref(self))
        atexit.register(self._atexit)
        _live_clients.add(self)
        self._start_consumer()

    # -- public calls ----------------------------------------------------------

    def track(
        self,
        user_id: str | int | None = None,
        event: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | int | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: _dt.datetime | None = None,
        channel: str | None = None,
        stage: str | None = None,
        campaign: str | None = None,
        store_id: str | None = None,
        message_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
    ) -> str:
        """Record that ``user_id`` (or ``anonymous_id``) did ``event``; returns the messageId."""
        if type(event) is not str or not event:
            raise ValidationError(f"track: event must be a non-empty str, got {event!r}")
        msg: dict[str, Any] = {"type": "track", "event": event}
        if properties is not None:
            msg["properties"] = _mapping(properties, "properties")
        if campaign is not None:
            msg["campaign"] = _text(campaign, "campaign")
        return self._enqueue(msg, user_id, anonymous_id, context, timestamp, channel, stage,
                             store_id, message_id, integrations)

    def identify(
        self,
        user_id: str | int | None = None,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | int | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: _dt.datetime | None = None,
        channel: str | None = None,
        store_id: str | None = None,
        message_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
    ) -> str:
        """Tie ``traits`` (and ``anonymous_id``, if given) to ``user_id``; returns the messageId."""
        msg: dict[str, Any] = {"type": "identify"}
        if traits is not None:
            msg["traits"] = _mapping(traits, "traits")
        return self._enqueue(msg, user_id, anonymous_id, context, timestamp, channel, None,
                             store_id, message_id, integrations)

    def alias(
        self,
        previous_id: str | int,
        user_id: str | int,
        *,
        context: Mapping[str, Any] | None = None,
        timestamp: _dt.datetime | None = None,
        channel: str | None = None,
        message_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
    ) -> str:
        """Record that ``previous_id`` and ``user_id`` are one person; returns the messageId."""
        msg: dict[str, Any] = {"type": "alias", "previousId": _id(previous_id, "previous_id")}
        if user_id is None:
            raise ValidationError("alias: user_id is required")
        return self._enqueue(msg, user_id, None, context, timestamp, channel, None,
                             None, message_id, integrations)

    def page(
        self,
        user_id: str | int | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | int | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: _dt.datetime | None = None,
        channel: str | None = None,
        stage: str | None = None,
        campaign: str | None = None,
        store_id: str | None = None,
        message_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
    ) -> str:
        """Record a page view (Segment's ``page``); returns the messageId."""
        return self._view("page", user_id, category, name, properties, anonymous_id, context,
                          timestamp, channel, stage, campaign, store_id, message_id, integrations)

    def screen(
        self,
        user_id: str | int | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | int | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: _dt.datetime | None = None,
        channel: str | None = None,
        stage: str | None = None,
        campaign: str | None = None,
        store_id: str | None = None,
        message_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
    ) -> str:
        """Record an app screen view (Segment's ``screen``); returns the messageId."""
        return self._view("screen", user_id, category, name, properties, anonymous_id, context,
                          timestamp, channel, stage, campaign, store_id, message_id, integrations)

    def _view(
        self,
        kind: str,
        user_id: str | int | None,
        category: str | None,
        name: str | None,
        properties: Mapping[str, Any] | None,
        anonymous_id: str | int | None,
        context: Mapping[str, Any] | None,
        timestamp: _dt.datetime | None,
        channel: str | None,
        stage: str | None,
        campaign: str | None,
        store_id: str | None,
        message_id: str | None,
        integrations: Mapping[str, Any] | None,
    ) -> str:
        """A page or screen view: name, category and properties, then the common fields."""
        msg: dict[str, Any] = {"type": kind}
        props = _mapping(properties, "properties") if properties is not None else {}
        if name is not None:
            msg["name"] = _text(name, "name")
        if category is not None:
            msg["category"] = _text(category, "category")
            props = {**props, "category": msg["category"]}
        if props:
            msg["properties"] = props
        if campaign is not None:
            msg["campaign"] = _text(campaign, "campaign")
        return self._enqueue(msg, user_id, anonymous_id, context, timestamp, channel, stage,
                             store_id, message_id, integrations)

    def purchase(
        self,
        order_id: str | int,
        revenue: float | int | decimal.Decimal,
        currency: str,
        items: Sequence[Mapping[str, Any]] | None = None,
        store_id: str | None = None,
        *,
        user_id: str | int | None = None,
        anonymous_id: str | int | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: _dt.datetime | None = None,
        channel: str | None = None,
        campaign: str | None = None,
        message_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
    ) -> str:
        """Record a completed order (purchase stage, ``Order Completed``); returns the messageId."""
        props: dict[str, Any] = dict(_mapping(properties, "properties")) if properties else {}
        props["order_id"] = _id(order_id, "order_id")
        props["revenue"] = _revenue(revenue)
        if type(currency) is not str or not _CURRENCY.fullmatch(currency):
            raise ValidationError(f"currency must be a 3-letter ISO 4217 code, got {currency!r}")
        props["currency"] = currency.upper()
        if items is not None:
            if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
                raise ValidationError("items must be a list of dicts")
            props["products"] = [_mapping(it, "items[]") for it in items]
        sid = store_id if store_id is not None else self._store_id
        if sid is not None:
            props["store_id"] = _text(sid, "store_id")
        msg: dict[str, Any] = {"type": "track", "event": "Order Completed", "properties": props}
        if campaign is not None:
            msg["campaign"] = _text(campaign, "campaign")
        return self._enqueue(msg, user_id, anonymous_id, context, timestamp, channel, "purchase",
                             sid, message_id, integrations)

    # -- the common path -------------------------------------------------------

    def _enqueue(self, msg: dict[str, Any], user_id: object, anonymous_id: object,
                 context: Mapping[str, Any] | None, timestamp: _dt.datetime | None,
                 channel: str | None, stage: str | None, store_id: str | None,
                 message_id: str | None, integrations: Mapping[str, Any] | None) -> str:
        if user_id is not None:
            msg["userId"] = user_id if type(user_id) is str and user_id else _id(user_id, "user_id")
        if anonymous_id is not None:
            msg["anonymousId"] = (anonymous_id if type(anonymous_id) is str and anonymous_id
                                  else _id(anonymous_id, "anonymous_id"))
        elif user_id is None:
            raise ValidationError(f"{msg['type']}: user_id or anonymous_id is required")
        if message_id is None:
            mid = new_message_id()
        elif type(message_id) is str and message_id:
            mid = message_id
        else:
            raise ValidationError(f"message_id must be a non-empty str, got {message_id!r}")
        msg["messageId"] = mid
        if timestamp is None:
            msg["timestamp"] = _now_iso()
        else:
            msg["timestamp"] = _timestamp(timestamp)
        if context is None:
            msg["context"] = self._context
        else:
            ctx = {**self._context, **_mapping(context, "context")}
            ctx["library"] = LIBRARY
            msg["context"] = ctx
        if channel is not None:
            msg["channel"] = _channel(channel)
        elif self._channel is not None:
            msg["channel"] = self._channel
        if stage is not None:
            msg["stage"] = _stage(stage)
        if store_id is not None:
            msg["store_id"] = _text(store_id, "store_id")
        elif self._store_id is not None:
            msg["store_id"] = self._store_id
        if integrations is not None:
            msg["integrations"] = _mapping(integrations, "integrations")
        try:
            data = _dumps_event(msg, self._context, self._context_json)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValidationError(f"{msg['type']}: event is not JSON-serialisable: "
                                  f"{exc or type(exc).__name__}") from exc
        if len(data) > MAX_EVENT_BYTES:
            raise ValidationError(f"{msg['type']}: event is {len(data)} bytes serialised; "
                                  f"the limit is {MAX_EVENT_BYTES}")
        if self._consumer is None or self._closed:
            if self._closed:
                self._drop_after_close()
                return mid
            self._start_consumer()
        self._put(data)
        return mid

    # -- lifecycle -------------------------------------------------------------

    def _start_consumer(self) -> None:
        with self._start_lock:
            if self._consumer is None and not self._closed:
                consumer = Consumer(self._queue, self._transport, self.stats_counters,
                                    self._send_policy, self.on_error)
                consumer.start()
                self._consumer = consumer

    def _drop_after_close(self) -> None:
        self.stats_counters.dropped += 1
        if not self._warned_closed:
            self._warned_closed = True
            log.warning("reise: client is shut down; dropping events tracked after shutdown()")

    def _after_fork_child(self) -> None:
        """In a forked child: fresh locks, connection and (lazily) sender thread."""
        self._start_lock = threading.Lock()
        self._consumer = None
        self._transport.abandon()
        self._queue.after_fork_child()
        self.stats_counters = Stats()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Send everything queued so far; True once delivered (or finally rejected).

        Returns False if ``timeout`` seconds passed first; events stay queued and the
        sender keeps retrying them.
        """
        if self._closed:
            return self._queue.undelivered() == 0
        if self._consumer is None:
            self._start_consumer()
        pos = self._queue.request_flush()
        return self._queue.wait_done(pos, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (at most ``timeout`` s, default ``exit_timeout``), stop the sender, close.

        Returns True if nothing was left undelivered. In durable mode undelivered events
        stay in the spool for the next run; otherwise they are reported as dropped.
        """
        if self._closed:
            return True
        timeout = self.exit_timeout if timeout is None else timeout
        ok = self.flush(timeout)
        self._closed = True
        atexit.unregister(self._atexit)
        _live_clients.discard(self)
        consumer = self._consumer
        self._queue.end_incident()
        self._queue.stop()
        if consumer is not None:
            consumer.stop_event.set()
            consumer.join(timeout=1.0 if ok else 0.2)
            consumer.report_drops()
        left = self._queue.undelivered()
        if left:
            if self._queue.durable:
                log.info("reise: %d undelivered events stay in the spool for the next run", left)
            else:
                self.stats_counters.dropped += left
                reason = f"{left} events undelivered at shutdown (collector unreachable)"
                log.error("reise: %s", reason)
                if self.on_error is not None:
                    try:
                        self.on_error(EventsDropped(reason, count=left))
                    except Exception:
                        log.exception("reise: on_error callback raised")
        self._transport.close()
        self._queue.close()
        return left == 0

    close = shutdown

    def click_url(self, url: str, **fields: Any) -> str:
        """A signed link that records a click, then redirects to ``url`` (``reise.links``)."""
        if not self.link_key:
            raise ConfigurationError("click_url needs link_key= (one of REISE_LINK_KEYS)")
        return _links.click_url(self.host, self.link_key, url, **fields)

    def pixel_url(self, **fields: Any) -> str:
        """A tracking-pixel URL (e-mail opens by default); needs a public (pk_) key."""
        if not self.public_key:
            raise ConfigurationError("pixel_url needs a public write key (public_key='pk_...')")
        return _links.pixel_url(self.host, self.public_key, **fields)

    def stats(self) -> dict[str, int]:
        """Counters: queued, delivered, rejected, dropped, failed, retries, batches."""
        d = self.stats_counters.as_dict()
        d["dropped"] += self._queue.dropped_total
        d["queued"] = self._queue.undelivered()
        return d

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        mode = "durable" if self._queue.durable else "memory"
        return f"<reise.Client host={self.host!r} {mode} queued={self._queue.undelivered()}>"

