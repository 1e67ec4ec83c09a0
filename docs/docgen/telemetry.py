"""The events and metrics reference, generated from the code that names them.

Events: every :class:`sessionward.EventName` member with the name, level and description
its audit line carries (computed by :meth:`SessionEvent.to_json`, the code that writes
the line). Metrics: every metric a :class:`~sessionward.asgi.metrics.SessionMetrics`
registers, read back from a private Prometheus registry.
"""

from __future__ import annotations

import html
import json

# Reasons shown for the events whose audit name depends on the reason.
_EXAMPLE_REASONS = {
    "EXPIRED": ("idle_timeout", "absolute_timeout"),
    "INVALID_SESSION": ("malformed", "unknown", "idle_timeout"),
}


def render_events() -> str:
    """Return the table of events: member, value, audit name, level, description."""
    from sessionward.core.events import EventName, SessionEvent

    out = ["| `EventName` | value | audit `event` | level | description |", "|---|---|---|---|---|"]
    for member in EventName:
        for reason in _EXAMPLE_REASONS.get(member.name, (None,)):
            line = json.loads(SessionEvent(name=member, at=0.0, reason=reason).to_json())
            shown = f"`{member.value}`" + (f" (reason `{reason}`)" if reason else "")
            out.append(
                f"| `{member.name}` | {shown} | `{line['event']}` | {line['level']} | {_cell(line['description'])} |"
            )
    return "\n".join(out) + "\n"


def render_end_reasons() -> str:
    """Return the table of :class:`EndReason` codes."""
    from sessionward.core.records import EndReason

    out = ["| `EndReason` | value |", "|---|---|"]
    out.extend(f"| `{member.name}` | `{member.value}` |" for member in EndReason)
    return "\n".join(out) + "\n"


def render_metrics() -> str:
    """Return the table of Prometheus metrics a ``SessionMetrics`` registers."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from sessionward.asgi.metrics import SessionMetrics

    registry = CollectorRegistry()
    metrics = SessionMetrics(registry)
    # Label names as each metric was declared (no sample exists before the first event).
    labels_of = {
        metric._name: metric._labelnames for metric in vars(metrics).values() if isinstance(metric, MetricWrapperBase)
    }
    out = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for family in registry.collect():
        suffix = {"counter": "_total", "histogram": "_bucket`, `_sum`, `_count"}.get(family.type, "")
        name = f"`{family.name}{suffix}`"
        labels = ", ".join(f"`{label}`" for label in labels_of.get(family.name, ())) or "—"
        out.append(f"| {name} | {family.type} | {labels} | {_cell(family.documentation)} |")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")
