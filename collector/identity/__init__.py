"""Identity: links fold ids into one customer at ingest; unlink splits them back (see docs/identity.md)."""
