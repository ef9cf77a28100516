"""The numbered migrations, installed as the package data collector.migrations (see pyproject.toml)."""
