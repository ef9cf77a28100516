"""The ``reise`` command line: serve, migrate, query, channels, import, demo and report."""
