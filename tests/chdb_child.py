"""Run SQL on an embedded store in a process of its own (chDB opens one data path per process).

``python -m tests.chdb_child chdb:///path`` reads a JSON list of statements on stdin and prints a JSON list of
their rows (statements that return none give an empty list).
"""

from __future__ import annotations

import json
import sys

from collector.store.clickhouse import Store


def main() -> None:
    store = Store(dsn=sys.argv[1])
    results = []
    for statement in json.load(sys.stdin):
        if statement.lstrip().upper().startswith(("SELECT", "SHOW", "WITH")):
            results.append([list(row) for row in store.query(statement).rows])
        else:
            store.command(statement)
            results.append([])
    store.close()
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    main()
