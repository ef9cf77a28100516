"""The webhooks' HTTP client (collector.triggers.http) and the deliverer's limits, against real loopback servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry

from collector.store.clickhouse import Store
from collector.triggers.config import Limits, parse_trigger_config
from collector.triggers.deliver import Deliverer, DeliveryPolicy
from collector.triggers.destinations import SafeResolver
from collector.triggers.http import MAX_BODY, HttpError, Pool
from collector.triggers.metrics import TriggerMetrics
from collector.triggers.outbox import Outbox
from tests.triggers.conftest import SECRET
from tests.triggers.receiver import Receiver

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (head and Content-Length body); b"" when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def _pool(port: int) -> Pool:
    return Pool(scheme="http", host="127.0.0.1", port=port, resolver=SafeResolver(allow_private=True), size=4)


async def _serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_connections_are_kept_alive(receiver: Receiver) -> None:
    """Thirty requests one after another travel on one connection."""
    pool = _pool(receiver.port)
    for n in range(30):
        reply = await pool.post(pool.request_bytes("/hook?n=1", {"X-N": str(n)}, b'{"n": %d}' % n), 5)
        assert (reply.status, reply.body) == (200, b"ok")
    pool.close()
    assert pool.opened == 1 and len({r.peer for r in receiver.received}) == 1
    assert [r.headers["X-N"] for r in receiver.received] == [str(n) for n in range(30)]
    assert receiver.received[0].path == "/hook" and receiver.received[0].headers["Host"] == f"127.0.0.1:{receiver.port}"


async def test_a_connection_the_destination_drops_while_idle_is_replaced() -> None:
    """A server that closes a kept connection when the next request comes (its idle timeout): the request is
    sent again on a new connection and answered."""
    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(OK)
        await _request(reader)  # the next request on this connection: dropped unanswered
        writer.close()

    server, port = await _serve(answer_once)
    pool = _pool(port)
    for _ in range(3):
        assert (await pool.post(pool.request_bytes("/", {}, b"{}"), 5)).status == 200
    assert pool.opened == 3
    pool.close()
    server.close()


async def test_chunked_and_interim_answers_are_read_and_the_connection_kept() -> None:
    """A 100 before the answer, a chunked 503 with Retry-After and trailers, then a 200 on the same connection."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n"
                     b"Retry-After: 7\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
        await _request(reader)
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()

    server, port = await _serve(script)
    pool = _pool(port)
    first = await pool.post(pool.request_bytes("/", {}, b"{}"), 5)
    assert (first.status, first.body, first.headers["retry-after"]) == (503, b"hello world", "7")
    second = await pool.post(pool.request_bytes("/", {}, b"{}"), 5)
    assert (second.status, second.body, pool.opened) == (201, b"", 1)
    pool.close()
    server.close()


async def test_a_huge_chunked_answer_is_not_buffered() -> None:
    """A chunk said to hold 256 MiB: the first 64 KiB are kept, the rest not waited for, the connection dropped."""
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000\r\n" + b"x" * 200_000)
        await reader.read()  # then nothing more: a client waiting for the whole chunk would time out

    server, port = await _serve(huge)
    pool = _pool(port)
    reply = await pool.post(pool.request_bytes("/", {}, b"{}"), 5)
    assert (reply.status, len(reply.body)) == (200, MAX_BODY)
    assert (await pool.post(pool.request_bytes("/", {}, b"{}"), 5)).status == 200 and pool.opened == 2
    pool.close()
    server.close()


@pytest.mark.parametrize("answer", [b"nonsense\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", b""])
async def test_a_malformed_or_missing_answer_is_an_error(answer: bytes) -> None:
    """Not HTTP, a bad status, a bad length, a bad header line, a close without an answer: HttpError."""
    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(answer)
        writer.close()

    server, port = await _serve(bad)
    pool = _pool(port)
    with pytest.raises(HttpError):
        await pool.post(pool.request_bytes("/", {}, b"{}"), 5)
    server.close()


async def test_a_silent_destination_times_out() -> None:
    """No answer within the timeout: TimeoutError, and the connection is not reused."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server, port = await _serve(silent)
    pool = _pool(port)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await pool.post(pool.request_bytes("/", {}, b"{}"), 0.3)
    assert time.monotonic() - started < 2
    server.close()


def _deliverer(store: Store, receiver: Receiver, limits: Limits, backoff: float = 0.05,
               ) -> tuple[Deliverer, Outbox, ThreadPoolExecutor, str]:
    config = parse_trigger_config([{"name": "limits", "when": {"enters_stage": "purchase"},
                                    "url": receiver.url + "/hook", "secret": SECRET}], [], hosts=("127.0.0.1",))
    outbox = Outbox(None)
    pool = ThreadPoolExecutor(max_workers=1)
    deliverer = Deliverer(config=config, outbox=outbox, store=store, metrics=TriggerMetrics(CollectorRegistry()),
                          policy=DeliveryPolicy(hosts=("127.0.0.1",), allow_private=True, max_attempts=5,
                                                backoff=backoff, limits=limits), pool=pool)
    return deliverer, outbox, pool, config.triggers[0].destination


async def _until_delivered(outbox: Outbox, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while outbox.counts().get("delivered", 0) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_a_destination_gets_at_most_its_concurrency_on_as_many_connections(store: Store,
                                                                                 receiver: Receiver) -> None:
    """Concurrency 3, forty slow answers: never more than 3 requests at once, on at most 3 connections."""
    receiver.delay = 0.05
    deliverer, outbox, pool, destination = _deliverer(store, receiver, Limits(concurrency=3, rate=0.0))
    items = outbox.commit_detection([(f"conc-{time.time_ns()}-{n}", "limits", destination, f"c{n}", b"{}")
                                     for n in range(40)], {}, [], [])
    await deliverer.start()
    deliverer.add(items)
    await _until_delivered(outbox, 40)
    await deliverer.close()
    pool.shutdown()
    assert len(receiver.received) == 40
    assert 2 <= receiver.most_at_once <= 3
    assert len({r.peer for r in receiver.received}) <= 3


async def test_retry_after_on_a_503_pauses_the_destination(store: Store, receiver: Receiver) -> None:
    """A 503 with Retry-After: 1 holds every delivery to the destination for that second (not the backoff)."""
    receiver.status, receiver.headers = 503, {"Retry-After": "1"}
    deliverer, outbox, pool, destination = _deliverer(store, receiver, Limits(concurrency=1, rate=0.0))
    items = outbox.commit_detection([(f"busy-{time.time_ns()}-{n}", "limits", destination, f"c{n}", b"{}")
                                     for n in range(2)], {}, [], [])
    await deliverer.start()
    deliverer.add(items)
    for _ in range(100):
        if receiver.received:
            break
        await asyncio.sleep(0.01)
    receiver.status, receiver.headers = 200, {}
    await _until_delivered(outbox, 2)
    await deliverer.close()
    pool.shutdown()
    arrived = [r.at for r in receiver.received]
    assert len(arrived) == 3, arrived  # the 503, then both after the pause
    assert arrived[1] - arrived[0] >= 0.9
