"""Storage: the clickhouse-connect Store, migrations, the cluster schema and the read-only SQL guard."""
