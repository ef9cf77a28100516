"""The ``reise`` command: serve, migrate, sql, customer."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

import orjson
from aiohttp import web

from collector.analyst import CUSTOMER_SQL, TIMELINE_SQL, run_query
from collector.app import create_app
from collector.errors import ReiseError
from collector.keys import ensure_keys
from collector.logs import configure_logging
from collector.migrate import apply_migrations
from collector.settings import Settings
from collector.store import QueryResult, Store
from collector.tables import format_record, format_table

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reise", description="Reise customer-journey collector")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the collector")
    serve.add_argument("--host", help="address to listen on (REISE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (REISE_PORT, default 8080)")
    serve.add_argument("--dsn", help="chdb:///path or http(s)://user:pass@host:8123/db (REISE_DSN)")

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("--dsn", help="as for serve (REISE_DSN)")

    sql = commands.add_parser("sql", help="run read-only SQL and print the result")
    sql.add_argument("query", help="one SELECT statement; {name:Type} placeholders take --param")
    sql.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a query parameter")
    sql.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    sql.add_argument("--dsn", help="as for serve (REISE_DSN)")

    customer = commands.add_parser("customer", help="print one customer's journey")
    customer.add_argument("id", help="customer id (or any id linked to it)")
    customer.add_argument("--json", action="store_true", help="print JSON instead of text")
    customer.add_argument("--dsn", help="as for serve (REISE_DSN)")
    return parser


def _serve(settings: Settings) -> None:
    settings = ensure_keys(settings)
    configure_logging(settings.log_format)
    if settings.dev_keys:
        write_key = next(iter(settings.write_keys))
        print(f"reise: no keys configured; development keys (kept in the data directory):\n"
              f"  write key: {write_key}\n  admin key: {settings.admin_key}", flush=True)
    print(f"reise: collector listening on http://{settings.host}:{settings.port}", flush=True)
    app = create_app(settings)
    # Queued rows are long-lived containers: keep the cyclic GC from rescanning them on every few requests.
    gc.freeze()
    gc.set_threshold(1_000_000, 100, 100)
    # The writer thread serialises batches in Python; hand the GIL back to the event loop sooner
    # than the default 5 ms, or every socket call of a request waits behind a whole time slice.
    sys.setswitchinterval(0.001)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                access_log=None, shutdown_timeout=30)


def _print_result(result: QueryResult, as_json: bool) -> None:
    if as_json:
        rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        sys.stdout.write(orjson.dumps(rows, default=str, option=orjson.OPT_NAIVE_UTC).decode() + "\n")
    else:
        print(format_table(result.columns, result.rows))


def _customer(settings: Settings, customer_id: str, as_json: bool) -> int:
    journey = run_query(settings, CUSTOMER_SQL, {"id": customer_id})
    if not journey.rows:
        print(f"reise: no customer {customer_id!r}", file=sys.stderr)
        return 1
    record = dict(zip(journey.columns, journey.rows[0], strict=True))
    timeline = run_query(settings, TIMELINE_SQL, {"ids": list(record["ids"])})
    if as_json:
        record["touchpoints"] = [dict(zip(timeline.columns, r, strict=True)) for r in timeline.rows]
        sys.stdout.write(orjson.dumps(record, default=str, option=orjson.OPT_NAIVE_UTC).decode() + "\n")
    else:
        print(format_record(journey.columns, journey.rows[0]))
        print("\ntouchpoints:")
        print(format_table(timeline.columns, timeline.rows))
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``reise`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(host=getattr(args, "host", None), port=getattr(args, "port", None),
                                     dsn=getattr(args, "dsn", None))
        if args.command == "serve":
            _serve(settings)
        elif args.command == "migrate":
            store = Store(dsn=settings.dsn)
            try:
                applied = apply_migrations(store)
            finally:
                store.close()
            print(f"reise: applied {', '.join(applied)}" if applied else "reise: migrations up to date")
        elif args.command == "sql":
            params = dict(p.partition("=")[::2] for p in args.param)
            _print_result(run_query(settings, args.query, params), args.json)
        elif args.command == "customer":
            sys.exit(_customer(settings, args.id, args.json))
    except ReiseError as exc:
        print(f"reise: {exc}", file=sys.stderr)
        sys.exit(2)
