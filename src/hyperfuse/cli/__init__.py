"""Command-line interface (typer + rich). ``main(argv)`` returns an exit code."""

from .main import main, run

__all__ = ["main", "run"]
