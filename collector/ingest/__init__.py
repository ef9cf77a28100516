"""The ingest pipeline: events validated and normalised, deduplicated, spooled durably and batched into the store."""
