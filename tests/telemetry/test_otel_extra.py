"""Without the ``otel`` extra the package works and nothing imports OpenTelemetry; asking for it names the extra."""

from __future__ import annotations

from setup_first_minutes.support import run_without

CODE = """
import sys
import sessionward, sessionward.io.manager, sessionward.io.exchange, sessionward.asgi.middleware, sessionward.wsgi
print("imported" if any(name.startswith("opentelemetry") for name in sys.modules) else "not imported")
try:
    import sessionward.io.telemetry
except ImportError as error:
    print(error)
"""


def test_without_opentelemetry_the_core_runs_and_telemetry_names_the_otel_extra() -> None:
    result = run_without(("opentelemetry",), CODE)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first == "not imported"
    assert second.endswith(": opentelemetry is not installed; pip install 'sessionward[otel]'")
