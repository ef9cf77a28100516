"""The query guard: analysts' SQL as ClickHouse's own parser reads it (``EXPLAIN AST``), walked node by node.

Allowed: one SELECT (WITH, UNION, INTERSECT/EXCEPT, subqueries, JOINs, window functions), ``DESCRIBE`` and a
plain ``SHOW TABLES``, over the tables and views of Reise's own database. Refused, naming what was refused:

- any other statement (KILL, SYSTEM, SET, INSERT, EXPLAIN, ...);
- ``INTO OUTFILE``, ``FORMAT`` and ``SETTINGS`` in the query;
- tables of any other database (``system.*``, ``information_schema``, ...);
- table functions other than the pure ones in ``PURE_TABLE_FUNCTIONS`` (file, url, s3, remote, mysql, executable,
  input, merge, ... all reach outside the query);
- scalar and aggregate functions that are not the engine's built-in ones (``system.functions`` with origin
  ``System``, aggregate combinators resolved), or that are in ``DENIED_FUNCTIONS`` or ``DENIED_CATEGORIES``
  (files, dictionaries, introspection, network-calling AI functions, the server's configuration); the one
  exception is Reise's own SQL functions (``REISE_FUNCTIONS``, created by its migrations), by their exact name;
- ``CREATE FUNCTION`` and ``DROP FUNCTION`` (as every statement but the three above).

The tree is the engine's: the guard never parses SQL itself. ``EXPLAIN AST`` prints identifiers and aliases as
they are, so a line break inside a quoted name yields lines that are not nodes; such a tree is refused whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from collector.errors import QueryForbidden

__all__ = [
    "DENIED_CATEGORIES",
    "DENIED_FUNCTIONS",
    "PURE_TABLE_FUNCTIONS",
    "REISE_FUNCTIONS",
    "AstNode",
    "GuardCatalog",
    "QueryGuard",
    "parse_explain",
]

# Table functions that read nothing but their arguments (everything else in system.table_functions is refused).
PURE_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values", "view", "primes",
})
# Built-in functions that reach outside the query: files, tables or dictionaries by name, the server's
# configuration and certificates, models and word lists loaded from files.
DENIED_FUNCTIONS = frozenset(name.lower() for name in (
    "file", "joinGet", "joinGetOrNull", "hasColumnInTable", "showCertificate", "getServerSetting", "getMacro",
    "getClientHTTPHeader", "catboostEvaluate", "filesystemAvailable", "filesystemCapacity", "filesystemUnreserved",
    "lemmatize", "stem", "synonyms", "getServerPort", "trap",
))
# system.functions categories refused whole: dictionaries (other tables by name), introspection (the process's
# memory), AI (calls to outside services), machine-learning models (files). Names starting ``__`` (the engine's
# internal helpers) are refused too; the parser's own ones (``_CAST``, ``caseWithExpression``) are not.
DENIED_CATEGORIES = frozenset({"Dictionary", "Embedded Dictionary", "Introspection", "AI", "Machine Learning"})
# Reise's own SQL functions (migrations/0020_customer_key.sql), allowed by their exact name when the engine lists them
# as SQL user-defined functions (origin SQLUserDefined). Every other user-defined function stays refused: an
# executable one runs a program, and a SQL one is whatever its creator wrote.
REISE_FUNCTIONS = frozenset({"reise_customer_key"})
# Functions the parser writes that system.functions does not list.
PARSER_FUNCTIONS = frozenset({"lambda"})
SYSTEM_DATABASES = frozenset({"system", "information_schema"})

_LINE = re.compile(r"^( *)([A-Za-z_]+)(.*?)(?: \(children (\d+)\))?$")
_ALIAS = " (alias "
# Node kinds a SELECT, DESCRIBE or SHOW TABLES is made of; any other kind is refused.
_NODE_KINDS = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "ExpressionList", "TablesInSelectQuery",
    "TablesInSelectQueryElement", "TableExpression", "TableIdentifier", "TableJoin", "ArrayJoin", "Identifier",
    "Function", "Literal", "Asterisk", "QualifiedAsterisk", "ColumnsRegexpMatcher", "ColumnsListMatcher",
    "QualifiedColumnsRegexpMatcher", "QualifiedColumnsListMatcher", "ColumnsTransformerList",
    "ColumnsExceptTransformer", "ColumnsReplaceTransformer", "ColumnsReplaceTransformerReplacement",
    "ColumnsApplyTransformer", "OrderByElement", "WithElement", "Subquery", "WindowDefinition", "WindowListElement",
    "InterpolateElement", "SampleRatio", "QueryParameter", "DescribeQuery", "ShowTables", "TableOverrideList",
    "LimitByElement", "Interpolate", "StorageOrderBy",
})
_STATEMENTS = {"SelectWithUnionQuery": "SELECT", "DescribeQuery": "DESCRIBE", "ShowTables": "SHOW TABLES"}
_REFUSED_KINDS = {"Set": "SETTINGS in the query", "SetQuery": "SET", "KillQueryQuery": "KILL",
                  "SystemQuery": "SYSTEM", "Explain": "EXPLAIN", "CreateSQLFunctionQuery": "CREATE FUNCTION",
                  "CreateFunctionQuery": "CREATE FUNCTION", "DropFunctionQuery": "DROP FUNCTION"}


@dataclass
class AstNode:
    """One node of ``EXPLAIN AST``: its kind, its name (function, identifier or literal), its children."""

    kind: str
    name: str
    depth: int
    children: list[AstNode] = field(default_factory=list)

    def walk(self) -> Iterable[AstNode]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def _parse_line(line: str) -> tuple[int, str, str, int]:
    match = _LINE.match(line)
    if match is None:
        raise QueryForbidden("a name or alias with a line break (the query cannot be checked)")
    indent, kind, rest, children = match.groups()
    if rest and not rest.startswith(" "):
        raise QueryForbidden("a name or alias with a line break (the query cannot be checked)")
    name = rest[1:].split(_ALIAS, 1)[0]
    return len(indent), kind, name, int(children or 0)


def parse_explain(lines: Sequence[str]) -> AstNode:
    """The tree printed by ``EXPLAIN AST``; a line that is not a node, or a wrong child count, is refused."""
    if not lines:
        raise QueryForbidden("empty statement")
    depth, kind, name, expected = _parse_line(lines[0])
    if depth != 0:
        raise QueryForbidden("an unexpected tree from the parser")
    root = AstNode(kind, name, 0)
    stack: list[tuple[AstNode, int]] = [(root, expected)]
    for line in lines[1:]:
        depth, kind, name, expected = _parse_line(line)
        while stack and stack[-1][0].depth >= depth:
            stack.pop()
        if not stack or stack[-1][0].depth != depth - 1:
            raise QueryForbidden("an unexpected tree from the parser")
        node = AstNode(kind, name, depth)
        stack[-1][0].children.append(node)
        stack.append((node, expected))
    _check_counts(root, lines)
    return root


def _check_counts(root: AstNode, lines: Sequence[str]) -> None:
    """Each printed ``(children N)`` must match the children found below it."""
    counts = [_parse_line(line)[3] for line in lines]
    for node, expected in zip(root.walk(), counts, strict=True):
        if expected != len(node.children):
            raise QueryForbidden("an unexpected tree from the parser")


@dataclass(frozen=True)
class GuardCatalog:
    """What the engine offers, read once from its system tables by the store's own (trusted) queries."""

    database: str
    databases: frozenset[str]
    tables: frozenset[str]  # the tables and views of Reise's database
    functions: frozenset[str]  # built-in functions and Reise's own, lower case, the denied ones removed
    denied: frozenset[str]  # built-in functions refused, lower case, with their aliases
    aggregates: frozenset[str]  # aggregate functions allowed, lower case
    combinators: tuple[str, ...]  # aggregate combinator suffixes, lower case, longest first
    table_functions: frozenset[str]  # every table function, lower case

    @classmethod
    def load(cls, rows: Callable[[str], Sequence[Sequence[object]]]) -> GuardCatalog:
        """Read the catalogue with ``rows(sql)``, a runner of trusted SQL."""
        database = str(rows("SELECT currentDatabase()")[0][0])
        functions = rows("SELECT name, alias_to, origin, categories, is_aggregate FROM system.functions")
        own = {str(n) for n, _a, origin, _c, _g in functions
               if origin == "SQLUserDefined" and str(n) in REISE_FUNCTIONS}
        denied = {str(n).lower() for n, _a, origin, cat, _g in functions
                  if (origin != "System" and str(n) not in own) or str(n).lower() in DENIED_FUNCTIONS
                  or str(n).startswith("__") or set(str(cat).split(", ")) & DENIED_CATEGORIES}
        denied |= {str(n).lower() for n, alias, *_ in functions if str(alias).lower() in denied}
        known = {str(n).lower() for n, *_ in functions} | PARSER_FUNCTIONS
        return cls(
            database=database,
            databases=frozenset(str(r[0]) for r in rows("SELECT name FROM system.databases")),
            tables=frozenset(str(r[0]) for r in rows(
                "SELECT name FROM system.tables WHERE database = currentDatabase()")),
            functions=frozenset(known - denied),
            denied=frozenset(denied),
            aggregates=frozenset(str(n).lower() for n, _a, _o, _c, agg in functions if agg) - denied,
            combinators=tuple(sorted((str(r[0]).lower() for r in rows(
                "SELECT name FROM system.aggregate_function_combinators")), key=len, reverse=True)),
            table_functions=frozenset(str(r[0]).lower() for r in rows("SELECT name FROM system.table_functions")),
        )


class QueryGuard:
    """Checks the ``EXPLAIN AST`` of one statement against the catalogue; raises QueryForbidden naming the reason."""

    def __init__(self, catalog: GuardCatalog) -> None:
        self.catalog = catalog
        # databases a qualified name may not start with: every other one, and the system ones in any case
        self._foreign = {d.lower() for d in catalog.databases | SYSTEM_DATABASES} - {catalog.database.lower()}

    def check(self, lines: Sequence[str]) -> str:
        """Refuse what is not allowed; return the statement's kind (SELECT, DESCRIBE or SHOW TABLES)."""
        root = parse_explain(lines)
        statement = _STATEMENTS.get(root.kind)
        if root.kind == "Set":
            raise QueryForbidden("SET: the limits are the collector's")
        if statement is None:
            raise QueryForbidden(f"{_statement_name(root.kind)}: only SELECT, DESCRIBE and SHOW TABLES are allowed")
        self._check_top(root)
        for node in root.walk():
            self._check_node(node)
        return statement

    def _check_top(self, root: AstNode) -> None:
        """Below the statement: its body, then at most one FORMAT (the client's own); nothing else."""
        children = list(root.children)
        if children and children[-1].kind == "Identifier":
            children.pop()  # the output format the client library appends
        body = {"SelectWithUnionQuery": "ExpressionList", "DescribeQuery": "TableExpression"}.get(root.kind)
        for child in children[1:] if body and children and children[0].kind == body else children:
            if child.kind == "Literal":
                raise QueryForbidden("INTO OUTFILE: results are answered, never written to files")
            if child.kind == "Set":
                raise QueryForbidden("SETTINGS in the query: the limits are the collector's")
            if child.kind == "Identifier" and root.kind == "ShowTables":
                raise QueryForbidden(f"SHOW TABLES FROM {child.name}: only Reise's own tables")
            raise QueryForbidden("FORMAT: the collector chooses the output format" if child.kind == "Identifier"
                                 else f"{_statement_name(child.kind)}: not allowed here")

    def _check_node(self, node: AstNode) -> None:
        if node.kind in _REFUSED_KINDS:
            raise QueryForbidden(_REFUSED_KINDS[node.kind])
        if node.kind not in _NODE_KINDS:
            raise QueryForbidden(f"{_statement_name(node.kind)} is not allowed")
        if node.kind == "TableIdentifier":
            self._check_table(node.name)
        elif node.kind in ("Identifier", "QualifiedAsterisk"):
            self._check_qualified(node.name)
        elif node.kind == "Function":
            self._check_function(node.name)

    def _check_table(self, name: str) -> None:
        database, dot, table = name.partition(".")
        if not dot:
            return  # unqualified: Reise's database (or a WITH name)
        if database.lower() in self._foreign or database != self.catalog.database or "." in table:
            raise QueryForbidden(f"table {name}: only the tables and views of Reise's database "
                                 f"({self.catalog.database}) may be read")

    def _check_qualified(self, name: str) -> None:
        head = name.split(".", 1)[0]
        if "." in name and head.lower() in self._foreign:
            raise QueryForbidden(f"{name}: the database {head} is not Reise's")

    def _check_function(self, name: str) -> None:
        lowered = name.lower()
        catalog = self.catalog
        if "." in name:
            database, _, view = name.partition(".")
            if database == catalog.database and view in catalog.tables:
                return
            raise QueryForbidden(f"{name}(): only Reise's own views and built-in functions")
        if lowered in catalog.denied:
            raise QueryForbidden(f"{name}(): reaches outside the query (files, network, dictionaries, other "
                                 "tables or the server's configuration)")
        if lowered in catalog.table_functions:
            if lowered in PURE_TABLE_FUNCTIONS or lowered in catalog.functions:
                return
            raise QueryForbidden(f"table function {name}(): reaches outside Reise's tables (files, network, "
                                 "processes or other databases)")
        if lowered in catalog.functions or name in catalog.tables or self._is_combined_aggregate(lowered):
            return
        raise QueryForbidden(f"{name}(): not a built-in function the query guard allows")

    def _is_combined_aggregate(self, name: str) -> bool:
        """True for an allowed aggregate function with combinators (``sumIf``, ``uniqMergeState`` ...)."""
        if name in self.catalog.aggregates:
            return True
        return any(name.endswith(suffix) and len(name) > len(suffix)
                   and self._is_combined_aggregate(name[: -len(suffix)]) for suffix in self.catalog.combinators)


def _statement_name(kind: str) -> str:
    """A readable name of a node kind: ``KillQueryQuery`` -> ``KILL``, ``InsertQuery`` -> ``INSERT``."""
    if kind in _REFUSED_KINDS:
        return _REFUSED_KINDS[kind]
    words = re.findall(r"[A-Z][a-z]*", kind.removesuffix("Query")) or [kind]
    return " ".join(words).upper()
