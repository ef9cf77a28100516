"""Run the collector CLI with ``python -m collector``."""

from collector.cli.main import main

if __name__ == "__main__":
    main()
