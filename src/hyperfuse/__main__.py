"""``python -m hyperfuse``."""

from hyperfuse.cli.main import run

run()
