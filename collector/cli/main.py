"""The ``reise`` command: serve, migrate, sql, forget, unsuppress, unlink, customer, channel and demo commands."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence

import orjson
from aiohttp import web

from collector.cli.channels import CHANNEL_COMMANDS, add_channel_parsers, run_channel_command
from collector.cli.deadletters import add_dead_letter_parser, run_dead_letters
from collector.cli.demo import add_demo_parser, run_demo
from collector.cli.enrich import add_enrich_parser, run_enrich
from collector.cli.report import add_report_parser, run_report
from collector.cli.tables import format_record, format_table
from collector.cli.triggers import TRIGGER_COMMANDS, add_trigger_parsers, run_trigger_command
from collector.cli.workers import run_workers
from collector.edge.app import create_app
from collector.errors import ConfigError, ReiseError, StoreUnavailable
from collector.ingest.scopes import user_hash
from collector.journey.analyst import forget, look_up_customer, run_query, unlink, unsuppress
from collector.keys import ensure_keys
from collector.logs import configure_logging
from collector.settings import ClientSettings, Settings, is_embedded
from collector.store.clickhouse import QueryResult, Store
from collector.store.cluster import database_of
from collector.store.migrate import apply_migrations, rendered_sql
from collector.store.users import reader_user_sql
from collector.store.view_settings import write_view_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reise", description="Reise customer-journey collector")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the collector")
    serve.add_argument("--host", help="address to listen on (REISE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (REISE_PORT, default 8080)")
    serve.add_argument("--dsn", help="chdb:///path or http(s)://user:pass@host:8123/db (REISE_DSN)")
    serve.add_argument("--workers", type=int,
                       help="processes on one port, each with its own spool; needs a ClickHouse server (REISE_WORKERS)")

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("--dsn", help="as for serve (REISE_DSN)")
    migrate.add_argument("--cluster", help="render for this ClickHouse cluster: replicated, distributed, ON CLUSTER "
                                           "(REISE_CLUSTER)")
    migrate.add_argument("--print", action="store_true", dest="print_sql",
                         help="print the SQL instead of running it")
    migrate.add_argument("--print-users", action="store_true", dest="print_users",
                         help="print the SQL of a ClickHouse user that may only read Reise's database (server mode)")
    migrate.add_argument("--reader", default="reise_reader", help="that user's name (default reise_reader)")
    migrate.add_argument("--reader-password", help="that user's password (default: a new random one)")

    sql = commands.add_parser("sql", help="run read-only SQL and print the result")
    sql.add_argument("query", help="one SELECT statement; {name:Type} placeholders take --param")
    sql.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a query parameter")
    sql.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    sql.add_argument("--dsn", help="as for serve (REISE_DSN)")

    forget_cmd = commands.add_parser("forget", help="delete a person and their linked ids from every table")
    forget_cmd.add_argument("id", help="customer id")
    forget_cmd.add_argument("--suppress", action="store_true",
                            help="also put their ids on the suppression list: later events are not stored")
    forget_cmd.add_argument("--dsn", help="as for serve (REISE_DSN)")

    unsuppress_cmd = commands.add_parser("unsuppress", help="take an id (and the ids suppressed with it) off the "
                                                            "suppression list: their events are stored again")
    unsuppress_cmd.add_argument("id", help="any id of the suppressed person")
    unsuppress_cmd.add_argument("--dsn", help="as for serve (REISE_DSN)")

    unlink_cmd = commands.add_parser("unlink", help="undo a wrong link: the id leaves its customer, whose journey "
                                                    "splits back by the links that remain")
    unlink_cmd.add_argument("id", help="the id to unlink (e.g. a till's shared card number)")
    unlink_cmd.add_argument("--dsn", help="as for serve (REISE_DSN)")

    customer = commands.add_parser("customer", help="print one customer's journey")
    customer.add_argument("id", help="customer id (or any id linked to it)")
    customer.add_argument("--json", action="store_true", help="print JSON instead of text")
    customer.add_argument("--dsn", help="as for serve (REISE_DSN)")
    user_hash_cmd = commands.add_parser("user-hash", help="print userHash = HMAC-SHA256(secret, ID) for a key that "
                                                          "verifies identities (REISE_VERIFY_SECRETS)")
    user_hash_cmd.add_argument("id", help="the customer's userId")
    user_hash_cmd.add_argument("--source", help="whose secret (a REISE_VERIFY_SECRETS source); needed when "
                                                "there are several")
    add_channel_parsers(commands)
    add_demo_parser(commands)
    add_report_parser(commands)
    add_enrich_parser(commands)
    add_dead_letter_parser(commands)
    add_trigger_parsers(commands)
    return parser


def _serve(settings: Settings) -> None:
    settings = ensure_keys(settings)
    configure_logging(settings.log_format)
    if settings.dev_keys:
        write_key = next(iter(settings.write_keys))
        print(f"reise: no keys configured; development keys (kept in the data directory):\n"
              f"  write key: {write_key}\n  admin key: {settings.admin_key}", flush=True)
    print(f"reise: collector listening on http://{settings.host}:{settings.port}"
          + (f" ({settings.workers} workers)" if settings.workers > 1 else ""), flush=True)
    if settings.workers == 1:
        _serve_process(settings)
        return
    try:  # once here rather than racing in every worker; workers retry on their own if this fails
        _migrate(settings)
    except StoreUnavailable as exc:
        print(f"reise: store unreachable, workers will retry the migrations: {exc}", file=sys.stderr, flush=True)
    sys.exit(run_workers(settings, _serve_process))


def _serve_process(settings: Settings) -> None:
    """Run one collector process until SIGTERM or SIGINT (also the target of each worker process)."""
    configure_logging(settings.log_format)
    app = create_app(settings)
    # Queued rows are long-lived containers: keep the cyclic GC from rescanning them on every few requests.
    gc.freeze()
    gc.set_threshold(1_000_000, 100, 100)
    # The writer thread serialises batches in Python; hand the GIL back to the event loop sooner
    # than the default 5 ms, or every socket call of a request waits behind a whole time slice.
    sys.setswitchinterval(0.001)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                access_log=None, shutdown_timeout=30, reuse_port=settings.workers > 1)


def _migrate(settings: ClientSettings) -> list[str]:
    """Apply the migrations (ON CLUSTER when REISE_CLUSTER names a cluster), then store the views' settings."""
    if settings.cluster and is_embedded(settings.dsn):
        raise ConfigError("a cluster needs a ClickHouse server DSN (http(s)://...); use --print to see the SQL")
    store = Store(dsn=settings.dsn)
    try:
        applied = apply_migrations(store, cluster=settings.cluster or None, retention=settings.retention)
        write_view_settings(store, settings.view_settings)
        return applied
    finally:
        store.close()


def _print_result(result: QueryResult, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(result.records(), default=str, option=orjson.OPT_NAIVE_UTC).decode() + "\n")
    else:
        print(format_table(result.columns, result.rows))


def _customer(settings: ClientSettings, customer_id: str, as_json: bool) -> int:
    found = look_up_customer(lambda sql, params: run_query(settings, sql, params), customer_id)
    if found is None:
        print(f"reise: no customer {customer_id!r}", file=sys.stderr)
        return 1
    if as_json:
        record = {**found.journey.records()[0], "touchpoints": found.timeline.records()}
        sys.stdout.write(orjson.dumps(record, default=str, option=orjson.OPT_NAIVE_UTC).decode() + "\n")
    else:
        print(format_record(found.journey.columns, found.journey.rows[0]))
        print("\ntouchpoints:")
        print(format_table(found.timeline.columns, found.timeline.rows))
    return 0


def _user_hash(settings: ClientSettings, user_id: str, source: str | None) -> str:
    """The userHash of an id with the named source's verification secret (the only one when none is named)."""
    secrets = settings.verify_secrets
    if source is None and len(secrets) == 1:
        source = next(iter(secrets))
    if source is None or source not in secrets:
        named = ", ".join(sorted(secrets)) or "none"
        raise ConfigError(f"user-hash: name a source of REISE_VERIFY_SECRETS with --source (configured: {named})")
    return user_hash(secrets[source], user_id)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``reise`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            _serve(Settings.from_env(host=args.host, port=args.port, dsn=args.dsn, workers=args.workers))
            return
        # client commands read and check only the client's settings, never the server's
        settings = ClientSettings.from_env(dsn=getattr(args, "dsn", None), cluster=getattr(args, "cluster", None))
        if args.command == "migrate" and args.print_users:
            sys.stdout.write(reader_user_sql(database_of(settings.dsn) or "default", settings.query_limits,
                                             user=args.reader, password=args.reader_password,
                                             cluster=settings.cluster or None))
        elif args.command == "migrate" and args.print_sql:
            sys.stdout.write(rendered_sql(settings.cluster or None, database_of(settings.dsn),
                                          retention=settings.retention))
        elif args.command == "migrate":
            applied = _migrate(settings)
            print(f"reise: applied {', '.join(applied)}" if applied else "reise: migrations up to date")
        elif args.command == "sql":
            params = dict(p.partition("=")[::2] for p in args.param)
            _print_result(run_query(settings, args.query, params), args.json)
        elif args.command == "forget":
            done = forget(settings, args.id, suppress=args.suppress)
            removed = ", ".join(f"{table} {n}" for table, n in done["deleted"].items())
            print(f"reise: forgot {done['customer_id']} (ids: {', '.join(done['ids'])}); rows deleted: {removed}"
                  + (f"; {done['suppressed']} ids suppressed" if args.suppress else ""))
        elif args.command == "unsuppress":
            lifted = unsuppress(settings, args.id)["lifted"]
            if not lifted:
                print(f"reise: {args.id!r} is not on the suppression list", file=sys.stderr)
                sys.exit(1)
            print(f"reise: unsuppressed {args.id} ({lifted} ids lifted)")
        elif args.command == "unlink":
            done = unlink(settings, args.id)
            parts = "; ".join(f"{key}: {', '.join(ids)}" for key, ids in done["customers"].items())
            print(f"reise: unlinked {done['id']} from {done['customer_id']}; customers now: {parts}")
        elif args.command == "user-hash":
            print(_user_hash(settings, args.id, args.source))
        elif args.command == "customer":
            sys.exit(_customer(settings, args.id, args.json))
        elif args.command in CHANNEL_COMMANDS:
            sys.exit(run_channel_command(settings, args))
        elif args.command == "demo":
            sys.exit(run_demo(settings, customers=args.customers, seed=args.seed, weeks=args.weeks,
                              write_key=args.write_key))
        elif args.command == "report":
            sys.exit(run_report(settings, args))
        elif args.command == "enrich":
            sys.exit(run_enrich(settings, args))
        elif args.command == "dead-letters":
            sys.exit(run_dead_letters(settings, args))
        elif args.command in TRIGGER_COMMANDS:
            sys.exit(run_trigger_command(settings, args))
    except ReiseError as exc:
        print(f"reise: {exc}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # output piped into head, less ...: the reader has gone, which is no error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
