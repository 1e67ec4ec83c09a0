"""The ``sessionward`` command line (``demo``, ``store init``, ``sessions …``, ``audit``).

Click and Rich come with the ``cli`` extra (and with ``demo`` and ``audit``): an
application that only imports the library does not load or need them. Without them,
the command prints which extra to install instead of a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from sessionward.core.extras import MissingExtraError, needs_extra

if TYPE_CHECKING:
    from sessionward.cli.commands import main
else:
    try:
        with needs_extra("cli", "the sessionward command"):
            from sessionward.cli.commands import main
    except MissingExtraError as missing:
        _missing = missing

        def main(*_args: object, **_kwargs: object) -> None:
            """Say which extra brings the command line, and exit 2."""
            print(f"error: {_missing}", file=sys.stderr)
            sys.exit(2)


__all__ = ["main"]
