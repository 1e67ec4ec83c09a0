"""The ``sessionward`` command line (``demo``, ``sessions …``, ``audit``)."""

from sessionward.cli.main import main

__all__ = ["main"]
