"""The ``sessionward`` command line.

Verbs: ``demo``, ``store init``, ``sessions list|revoke|revoke-user|purge|stats`` and
``audit``. Each lives in a small module (``sessions``, ``audit``); this one holds
the group and the one place where errors become exit codes:

* bad arguments and bad configuration (a malformed ``SESSIONWARD_*`` variable, an
  unsupported store URL, or one whose extra is not installed) print one ``error: …``
  line and exit 2;
* runtime failures (store unreachable, no store at the URL, site unreachable, nothing to
  revoke, a verb whose extra is not installed) print one ``error: …`` line and exit 1;
* ``sessionward audit`` exits 1 when a check fails.

No expected failure shows a traceback: a traceback means a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from sessionward import __version__
from sessionward.cli.audit import audit
from sessionward.cli.common import UNAVAILABLE_HINT, redact_url, run_on_store, safe_text, store_option
from sessionward.cli.sessions import sessions
from sessionward.core.errors import ConfigError, SessionwardError, StoreUnavailableError
from sessionward.core.extras import needs_extra
from sessionward.stores.base import SessionStore

USAGE_EXIT = 2
FAILURE_EXIT = 1
# Click 8.2+ raises this for a bare group name; older versions print the help themselves.
_NO_ARGS_IS_HELP: type[Exception] | tuple[()] = getattr(click.exceptions, "NoArgsIsHelpError", ())


class SessionwardGroup(click.Group):
    """A group whose failures are one line on stderr and an exit code, never a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit with 0, 1 (failure) or 2 (usage or configuration error)."""
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        try:
            result = super().main(
                args,
                prog_name or "sessionward",
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except _NO_ARGS_IS_HELP as error:
            # A bare group name asks for its help; that is not an error.
            context = getattr(error, "ctx", None)
            click.echo(context.get_help() if context else self.get_help(click.Context(self)))
            sys.exit(0)
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            _fail(f"{error.format_message()}{hint}", USAGE_EXIT)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except click.Abort:
            _fail("aborted", FAILURE_EXIT)
        except ConfigError as error:
            _fail(str(error), USAGE_EXIT)
        except StoreUnavailableError as error:
            _fail(f"{error} ({UNAVAILABLE_HINT})", FAILURE_EXIT)
        except SessionwardError as error:
            _fail(str(error), FAILURE_EXIT)
        sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    # One line, whatever the message held: scripts read the first line of stderr. Messages
    # quote URLs, arguments and what servers answered: controls are shown, not sent.
    click.echo(f"error: {safe_text(' '.join(message.split()))}", err=True)
    sys.exit(code)


@click.group("sessionward", cls=SessionwardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sessionward")
def main() -> None:
    """Secure server-side sessions: demo app, store administration and site audit."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="TCP port.")
@store_option
@click.option("--debug", is_flag=True, help="Verbose logs and tracebacks in responses (never in production).")
def demo(host: str, port: int, store_url: str, debug: bool) -> None:
    """Serve the demo application (http://127.0.0.1:8000 by default)."""
    # Imported here: the demo pulls in the web stack, which the other verbs never need.
    with needs_extra("demo", "the demo"):
        from sessionward.demo import serve  # type: ignore[attr-defined, unused-ignore]
    click.echo(safe_text(f"sessionward demo on http://{host}:{port} (store {redact_url(store_url)})"), err=True)
    serve(host=host, port=port, store_url=store_url, debug=debug)


@main.group()
def store() -> None:
    """Manage the session store."""


@store.command("init")
@store_option
def store_init(store_url: str) -> None:
    """Create the store's schema (tables, indexes): an explicit, idempotent step."""

    async def work(opened: SessionStore) -> None:
        await opened.setup()

    run_on_store(store_url, work, must_exist=False)
    click.echo(f"store ready: {safe_text(redact_url(store_url))}")


main.add_command(sessions)
main.add_command(audit)

cli = main
"""Alias of :func:`main`, the ``click`` group (``CliRunner().invoke(cli, …)``)."""

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
