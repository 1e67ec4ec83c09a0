"""Optional dependencies: import them, or say which extra brings them.

A base install (``pip install sessionward``) holds the library's core and I/O layer and
the memory and file stores. Everything else is an extra of
``[project.optional-dependencies]``: the command line (``cli``), the stores (``sqlite``,
``postgres``, ``mysql``, ``redis``), the integrations (``starlette``, ``fastapi``,
``flask``, ``litestar``, ``quart``, ``django``), telemetry (``prometheus``, ``otel``) and
the tools (``audit``, ``demo``). Every import of such a dependency runs under
:func:`needs_extra`, so that a missing package is one line naming the command that
installs it, rather than ``No module named 'sqlalchemy'`` at the end of a long traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from sessionward.core.errors import ConfigError, SessionwardError


class MissingExtraError(SessionwardError, ImportError):
    """A dependency of an optional feature is not installed (or does not import).

    The message names the feature, the module that is missing and the extra that brings
    it: ``the PostgreSQL store is not available: asyncpg is not installed; pip install
    'sessionward[postgres]'``.

    Attributes:
        extra: The extra to install.
    """

    def __init__(self, feature: str, extra: str, error: ImportError) -> None:
        missing = (error.name or "").partition(".")[0]
        if isinstance(error, ModuleNotFoundError) and missing and missing != "sessionward":
            cause = f"{missing} is not installed"
        else:
            # Installed but broken (a missing shared library, a version too old): say what it said.
            lines = str(error).splitlines()
            cause = f"importing it failed ({lines[0] if lines else type(error).__name__})"
        super().__init__(f"{feature} is not available: {cause}; pip install 'sessionward[{extra}]'", name=error.name)
        self.extra = extra


@contextmanager
def needs_extra(extra: str, feature: str, *, setting: str | None = None) -> Iterator[None]:
    """Run imports that ``feature`` needs; turn an :class:`ImportError` into one naming ``extra``.

    Args:
        extra: The extra of ``pyproject.toml`` that installs what the block imports.
        feature: What the user asked for, as the message names it (``"the PostgreSQL store"``).
        setting: When the feature was chosen by a setting (a store URL), the error is a
            :class:`ConfigError` naming it, as any other bad setting.

    Raises:
        MissingExtraError: (an :class:`ImportError`) when ``setting`` is ``None``.
        ConfigError: naming ``setting`` otherwise.
    """
    try:
        yield
    except ImportError as error:
        missing = error if isinstance(error, MissingExtraError) else MissingExtraError(feature, extra, error)
        if setting is not None:
            raise ConfigError(setting, str(missing)) from None
        raise missing from None


def require(extra: str, feature: str, *modules: str, setting: str | None = None) -> None:
    """Import ``modules`` now (those a library imports only later, such as database drivers).

    Raises:
        MissingExtraError | ConfigError: as :func:`needs_extra`.
    """
    with needs_extra(extra, feature, setting=setting):
        for module in modules:
            importlib.import_module(module)
