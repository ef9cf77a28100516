"""Render the single-server migrations for a ClickHouse cluster: the same SQL, transformed statement by statement.

Every MergeTree table ``t`` becomes ``t_local`` (Replicated, one copy per replica of a shard) plus ``t``, a
Distributed table over it sharded by ``cityHash64`` of the customer id, so the collector's inserts and the
analysts' queries keep using the plain names. Materialized views read and write the local tables (inserts
trigger them on the shard that stores the rows); plain views read the Distributed tables, with ``GLOBAL``
joins, so they see every shard. SQL functions are created on every node. DDL runs ``ON CLUSTER``.

Sharding: touchpoints and the per-id journey state are sharded by ``journey_id`` (the customer id when
known, else the anonymous id), identity links by the customer id. A customer's own touchpoints, state and
links therefore live on one shard; anonymous touchpoints recorded before a link stay on the anonymous id's
shard and are folded in at query time by the views (aggregate states merge exactly across shards).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from collector.errors import ConfigError

__all__ = ["ClusterRenderer", "database_of", "local_name", "sharding_key"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*(\(.*)$", re.S | re.I)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w+)(\s*\([^)]*\))?", re.I)
_CREATE_MV = re.compile(
    r"^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s+TO\s+(\w+)\s+(AS\s+.*)$", re.S | re.I
)
# a view, with the column list it may declare (its types as DESCRIBE shows them) before AS SELECT
_CREATE_VIEW = re.compile(
    r"^CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*(\(.*?\))?\s*(AS\s+(?:SELECT|WITH)\b.*)$",
    re.S | re.I,
)
_CREATE_FUNCTION = re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s+(AS\s.*)$",
                              re.S | re.I)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(\w+)\s+(.*)$", re.S | re.I)
_INSERT_SELECT = re.compile(r"^INSERT\s+INTO\s+(\w+)\s*(\([^)]*\))?\s*(SELECT\s.*)$", re.S | re.I)
_DROP = re.compile(r"^DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?(\w+)\s*$", re.S | re.I)
_COLUMN_ALTER = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)
_SOURCE = re.compile(r"\b(FROM|JOIN)\s+(\w+)\b", re.I)
# a join or IN subquery, with what may precede it: GLOBAL (already distributed) or ARRAY (not a table join)
_JOIN = re.compile(
    r"\b(GLOBAL\s+|ARRAY\s+)?((?:(?:LEFT|RIGHT|FULL|INNER|CROSS)\s+)?(?:(?:OUTER|ANY|ALL|SEMI|ANTI|ASOF)\s+)?JOIN)\b",
    re.I,
)
_IN_SUBQUERY = re.compile(r"\b(GLOBAL\s+)?((?:NOT\s+)?IN\s*\(\s*SELECT)\b", re.I)
_MERGE_TREES = ("MergeTree", "ReplacingMergeTree", "AggregatingMergeTree", "SummingMergeTree",
                "CollapsingMergeTree", "VersionedCollapsingMergeTree")
_NON_REPLICATED_WINDOW = re.compile(r"\bnon_replicated_deduplication_window\b", re.I)


def local_name(table: str) -> str:
    """The name of a table's per-shard replicated copy."""
    return f"{table}_local"


def _has_column(columns: str, name: str) -> bool:
    return re.search(rf"^\s*\(?\s*{name}\s+\w", columns, re.M) is not None


def sharding_key(columns: str) -> str:
    """The Distributed sharding expression for a table's column list: the customer id it belongs to.

    ``journey_id`` where the table has it (customer id when known, else anonymous id); otherwise the
    customer id, falling back to the anonymous id for rows that carry none; a table of keys alone
    (``event_keys``, ``dead_letter_replays``) by its key.
    """
    if _has_column(columns, "journey_id"):
        return "cityHash64(journey_id)"
    if _has_column(columns, "customer_id") and _has_column(columns, "anonymous_id"):
        return "cityHash64(if(customer_id != '', customer_id, anonymous_id))"
    if _has_column(columns, "customer_id"):
        return "cityHash64(customer_id)"
    if _has_column(columns, "key"):
        return "cityHash64(key)"  # event_keys, dead_letter_replays: no customer in them; lookups read every shard
    raise ConfigError("cannot shard a table without a journey_id, customer_id or key column")


def database_of(dsn: str) -> str:
    """The database an http(s) DSN names (``default`` when it names none)."""
    path = urlparse(dsn).path.strip("/") if dsn.startswith(("http://", "https://")) else ""
    return path or "default"


@dataclass
class ClusterRenderer:
    """Transforms single-server statements into cluster DDL; remembers which tables it has replicated."""

    cluster: str
    database: str = "default"
    tables: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for what, value in (("cluster", self.cluster), ("database", self.database)):
            if not _IDENT.match(value):
                raise ConfigError(f"{what} name must be an identifier ([A-Za-z_][A-Za-z0-9_]*), got {value!r}")

    @property
    def on_cluster(self) -> str:
        """The ``ON CLUSTER`` clause."""
        return f"ON CLUSTER {self.cluster}"

    def replicated_engine(self, engine: str, args: str, path: str) -> str:
        """A Replicated* engine clause keeping the engine's own arguments."""
        inner = args.strip()[1:-1].strip() if args and args.strip() else ""
        extra = f", {inner}" if inner else ""
        return f"ENGINE = Replicated{engine}('{path}', '{{replica}}'{extra})"

    def render(self, statement: str) -> list[str]:
        """The cluster statements for one single-server statement."""
        statement = statement.strip().rstrip(";").strip()
        for pattern, method in ((_CREATE_TABLE, self._table), (_CREATE_MV, self._materialized_view),
                                (_CREATE_VIEW, self._view), (_CREATE_FUNCTION, self._function), (_ALTER, self._alter),
                                (_DROP, self._drop), (_INSERT_SELECT, self._insert_select)):
            match = pattern.match(statement)
            if match:
                return method(match)
        raise ConfigError(f"cannot render for a cluster: {statement.splitlines()[0][:120]!r}")

    def ledger(self, ddl: str) -> str:
        """The migration ledger: one replicated table shared by every node of the cluster (not sharded)."""
        match = _CREATE_TABLE.match(ddl.strip())
        if not match:
            raise ConfigError("ledger DDL must be a CREATE TABLE")
        name, rest = match.group(2), match.group(3)
        engine = _ENGINE.search(rest)
        if not engine:
            raise ConfigError("ledger DDL has no ENGINE")
        path = f"/clickhouse/tables/{{database}}/{name}"
        rendered = rest[: engine.start()] + self.replicated_engine(engine.group(1), engine.group(2) or "", path)
        rendered += rest[engine.end():]
        return f"CREATE TABLE IF NOT EXISTS {name} {self.on_cluster}\n{rendered.strip()}"

    def _table(self, match: re.Match[str]) -> list[str]:
        name, rest = match.group(2), match.group(3)
        engine = _ENGINE.search(rest)
        if not engine or engine.group(1) not in _MERGE_TREES:
            raise ConfigError(f"table {name}: only MergeTree-family engines can be replicated")
        columns = rest[: engine.start()]
        key = sharding_key(columns)
        local = local_name(name)
        path = f"/clickhouse/tables/{{shard}}/{{database}}/{local}"
        tail = _NON_REPLICATED_WINDOW.sub("replicated_deduplication_window", rest[engine.end():])
        replicated = self.replicated_engine(engine.group(1), engine.group(2) or "", path)
        self.tables.add(name)
        return [
            f"CREATE TABLE IF NOT EXISTS {local} {self.on_cluster}\n{columns.strip()}\n{replicated}{tail}",
            f"CREATE TABLE IF NOT EXISTS {name} {self.on_cluster} AS {local}\n"
            f"ENGINE = Distributed('{self.cluster}', '{self.database}', '{local}', {key})",
        ]

    def _materialized_view(self, match: re.Match[str]) -> list[str]:
        name, target, select = match.group(2), match.group(3), match.group(4)
        if target not in self.tables:
            raise ConfigError(f"materialized view {name}: target {target} is not a replicated table")

        def to_local(source: re.Match[str]) -> str:
            table = source.group(2)
            if table not in self.tables:
                raise ConfigError(f"materialized view {name}: reads {table}, which is not a replicated table")
            return f"{source.group(1)} {local_name(table)}"

        select = _SOURCE.sub(to_local, select)
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} {self.on_cluster} TO {local_name(target)}\n{select}"]

    def _view(self, match: re.Match[str]) -> list[str]:
        replace, exists, name, columns, select = match.groups()
        select = _JOIN.sub(lambda m: m.group(0) if m.group(1) else f"GLOBAL {m.group(2)}", select)
        select = _IN_SUBQUERY.sub(lambda m: m.group(0) if m.group(1) else f"GLOBAL {m.group(2)}", select)
        head = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW IF NOT EXISTS" if exists else "CREATE VIEW"
        declared = f"\n{columns}" if columns else ""  # after ON CLUSTER, as the engine's grammar has it
        return [f"{head} {name} {self.on_cluster}{declared}\n{select}"]

    def _function(self, match: re.Match[str]) -> list[str]:
        """A SQL function, on every node (a function is the server's, not a database's); its body reads the
        Distributed tables by their plain names, so no GLOBAL is needed for its scalar sub-query."""
        replace, exists, name, body = match.group(1), match.group(2), match.group(3), match.group(4)
        head = ("CREATE OR REPLACE FUNCTION" if replace else "CREATE FUNCTION IF NOT EXISTS" if exists
                else "CREATE FUNCTION")
        return [f"{head} {name} {self.on_cluster} {body}"]

    def _insert_select(self, match: re.Match[str]) -> list[str]:
        """A backfill: run once (not ON CLUSTER) into the Distributed table, reading every shard (GLOBAL)."""
        table, columns, select = match.group(1), match.group(2) or "", match.group(3)
        if table not in self.tables:
            raise ConfigError(f"insert into {table}: not a replicated table")
        select = _JOIN.sub(lambda m: m.group(0) if m.group(1) else f"GLOBAL {m.group(2)}", select)
        select = _IN_SUBQUERY.sub(lambda m: m.group(0) if m.group(1) else f"GLOBAL {m.group(2)}", select)
        return [f"INSERT INTO {table} {columns}\n{select}".replace(" \n", "\n")]

    def _alter(self, match: re.Match[str]) -> list[str]:
        name, action = match.group(1), match.group(2)
        if name not in self.tables:
            return [f"ALTER TABLE {name} {self.on_cluster} {action}"]
        local = f"ALTER TABLE {local_name(name)} {self.on_cluster} {action}"
        if _COLUMN_ALTER.match(action.strip()):
            return [local, f"ALTER TABLE {name} {self.on_cluster} {action}"]
        return [local]

    def _drop(self, match: re.Match[str]) -> list[str]:
        kind, exists, name = match.group(1).upper(), match.group(2) or "", match.group(3)
        statements = [f"DROP {kind} {exists}{name} {self.on_cluster} SYNC"]
        if name in self.tables:
            statements.append(f"DROP TABLE {exists}{local_name(name)} {self.on_cluster} SYNC")
            self.tables.discard(name)
        return statements
