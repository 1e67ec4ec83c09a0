"""The settings reference, generated from the policy dataclasses and the variable registry.

One row per setting: its path in :class:`sessionward.SessionPolicy` (``timeouts.idle_timeout_s``),
its type, its default, the values it accepts and the environment variable that sets it.
Nothing here is written by hand:

* the settings, types and defaults come from the dataclasses themselves;
* the descriptions come from each dataclass's ``Attributes:`` docstring section (a
  setting without one is reported as a build error);
* the accepted values come from the type (enums, literals, booleans), the variable's
  declaration in :data:`sessionward.core.env.VARIABLES`, and the ``ConfigError``
  messages that the dataclass's ``__post_init__`` raises for that setting, read from the
  source with :mod:`ast`, so the page says exactly what the validation refuses.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import html
import importlib
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Iterator
from typing import Any

POLICY_MODULES = ("sessionward.core.config", "sessionward.core.headers", "sessionward.core.csrf")
"""Modules whose policy dataclasses are documented (the last two only once they exist)."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One leaf setting of a policy dataclass."""

    owner: type
    path: str
    field: dataclasses.Field[Any]
    type_text: str
    default: str
    accepts: list[str]
    variables: list[str]
    description: str


def docstring_attributes(cls: type) -> dict[str, str]:
    """Return the ``Attributes:`` section of ``cls``'s Google-style docstring, by name."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    found: dict[str, str] = {}
    inside = False
    current: str | None = None
    for line in lines:
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break  # the next section
        match = re.match(r"^ {4}(\w+)(?: \([^)]*\))?: (.*)$", line)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current is not None and line.strip():
            found[current] += " " + line.strip()
    return found


def validation_messages(cls: type) -> dict[str, list[str]]:
    """Return what ``cls.__post_init__`` refuses, by setting name, read from its source.

    Every ``raise ConfigError("<setting>", "<message>")`` gives one message. F-strings
    are evaluated where they use only module constants and the values of an enclosing
    ``for`` over a literal tuple; a part that depends on the refused value itself is
    shown as ``…``.
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    module = importlib.import_module(cls.__module__)
    namespace: dict[str, Any] = dict(vars(module))
    tree = ast.parse(source)
    messages: dict[str, list[str]] = {}

    def visit(node: ast.AST, bindings: list[dict[str, Any]]) -> None:
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple | ast.List):
            try:
                values = ast.literal_eval(node.iter)
            except ValueError:
                values = None
            if values is not None:
                for value in values:
                    bound = _bind(node.target, value)
                    for child in node.body:
                        visit(child, [*bindings, bound])
                return
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            call = node.exc
            if isinstance(call.func, ast.Name) and call.func.id == "ConfigError" and len(call.args) >= 2:
                scope = dict(namespace)
                for bound in bindings:
                    scope.update(bound)
                setting = _render(call.args[0], scope)
                message = _render(call.args[1], scope)
                messages.setdefault(setting, [])
                if message not in messages[setting]:
                    messages[setting].append(message)
        for inner in ast.iter_child_nodes(node):
            visit(inner, bindings)

    for found in ast.walk(tree):
        if isinstance(found, ast.FunctionDef) and found.name == "__post_init__":
            visit(found, [])
    return messages


def _bind(target: ast.expr, value: Any) -> dict[str, Any]:
    if isinstance(target, ast.Name):
        return {target.id: value}
    if isinstance(target, ast.Tuple) and isinstance(value, tuple):
        bound: dict[str, Any] = {}
        for element, item in zip(target.elts, value, strict=True):
            bound.update(_bind(element, item))
        return bound
    return {}


def _render(node: ast.expr, scope: dict[str, Any]) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
                continue
            assert isinstance(value, ast.FormattedValue)
            parts.append(_render_formatted(value, scope))
        return "".join(parts)
    return ast.unparse(node)


def _render_formatted(value: ast.FormattedValue, scope: dict[str, Any]) -> str:
    expression = ast.unparse(value.value)
    try:
        result = eval(compile(ast.Expression(value.value), "<setting>", "eval"), {"__builtins__": {}}, scope)  # noqa: S307 - our own source, module constants only
    except Exception:
        return "…"
    if value.conversion == ord("r"):
        result = repr(result)
    elif value.conversion == ord("s"):
        result = str(result)
    spec = _render(value.format_spec, scope) if value.format_spec is not None else ""
    try:
        return format(result, spec)
    except (TypeError, ValueError):
        return f"{{{expression}}}"


def policy_classes() -> list[type]:
    """Return the policy dataclasses, :class:`SessionPolicy`'s parts first, in source order."""
    classes: list[type] = []
    for name in POLICY_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
                and value not in classes
                and (name == POLICY_MODULES[0] or value.__name__.endswith("Policy"))
            ):
                classes.append(value)
    classes.sort(key=lambda cls: (cls.__module__ != POLICY_MODULES[0], inspect.getsourcelines(cls)[1]))
    return classes


def _hints(cls: type) -> dict[str, Any]:
    module = importlib.import_module(cls.__module__)
    return typing.get_type_hints(cls, vars(module), include_extras=True)


def _choices(hint: Any) -> list[str] | None:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return [str(arg) for arg in typing.get_args(hint)]
    if origin in (typing.Union, types.UnionType):
        choices: list[str] = []
        for arg in typing.get_args(hint):
            if arg is type(None):
                choices.append("None")
                continue
            inner = _choices(arg)
            if inner is None:
                return None
            choices.extend(inner)
        return choices
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return [str(member.value) for member in hint]
    if hint is bool:
        return ["True", "False"]
    return None


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    return _show(value)


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return repr(value.value)
    if isinstance(value, frozenset | set):
        return "{" + ", ".join(repr(item) for item in sorted(value)) + "}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _is_policy(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def settings(root: type, variables: dict[str, list[str]], prefix: str = "") -> Iterator[Setting]:
    """Yield the leaf settings of ``root``, descending into nested policy dataclasses."""
    hints = _hints(root)
    described = docstring_attributes(root)
    for field in dataclasses.fields(root):
        if not field.init or field.name.startswith("_"):
            continue  # computed, not a setting
        hint = hints[field.name]
        path = f"{prefix}{field.name}"
        if _is_policy(hint):
            yield from settings(hint, variables, f"{path}.")
            continue
        yield Setting(
            owner=root,
            path=path,
            field=field,
            type_text=str(field.type),
            default=_default(field),
            accepts=list(_choices(hint) or []),
            variables=variables.get(path, []),
            description=described.get(field.name, ""),
        )


def attach_messages(rows: list[Setting], refused: dict[str, list[str]]) -> dict[str, list[str]]:
    """Add each validation message to the row of its setting; return the ones naming no single row."""
    left = dict(refused)
    for row in rows:
        for key in list(left):
            if key == row.path or (key.split(".", 1)[-1] == row.path and "." not in row.path):
                # "… is not one of a, b, c" says again what the choices already list.
                choices = bool(row.accepts)
                row.accepts.extend(
                    message
                    for message in left.pop(key)
                    if message not in row.accepts and not (choices and message.startswith("… is not one of"))
                )
    return left


def _cell(text: str) -> str:
    return html.escape(text).replace("|", "&#124;").replace("\n", " ")


def _code(text: str) -> str:
    return f"<code>{_cell(text)}</code>"


def _rst_to_md(text: str) -> str:
    """Turn the docstrings' ``literal`` and :role:`target` markup into Markdown code spans."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


def render(errors: list[str]) -> str:
    """Return the Markdown of the settings tables; append a message to ``errors`` per gap."""
    from sessionward.core.config import SessionPolicy
    from sessionward.core.env import VARIABLES

    by_setting: dict[str, list[str]] = {}
    for variable in VARIABLES:
        for setting in variable.settings:
            by_setting.setdefault(setting, []).append(variable.name)

    trees: list[list[Setting]] = [list(settings(SessionPolicy, by_setting))]
    seen = {row.owner for row in trees[0]} | {SessionPolicy}
    for cls in policy_classes():
        if cls not in seen:
            trees.append(list(settings(cls, by_setting)))
            seen |= {row.owner for row in trees[-1]} | {cls}

    out: list[str] = []
    for tree in trees:
        refused: dict[str, list[str]] = {}
        for cls in dict.fromkeys(row.owner for row in tree):
            for key, messages in validation_messages(cls).items():
                refused.setdefault(key, []).extend(messages)
        if tree and tree[0].owner is SessionPolicy:
            for key, messages in validation_messages(SessionPolicy).items():
                refused.setdefault(key, []).extend(m for m in messages if m not in refused.get(key, []))
        left = attach_messages(tree, refused)
        groups: dict[type, list[Setting]] = {}
        for row in tree:
            groups.setdefault(row.owner, []).append(row)
        for cls, rows in groups.items():
            out.append(_table(cls, rows, errors))
        if left:
            out.append("Checks that involve several settings at once:\n")
            for key, messages in left.items():
                for message in messages:
                    out.append(f"- `{key}`: {_cell(message)}")
            out.append("")

    documented = {row.path for tree in trees for row in tree}
    for variable in VARIABLES:
        for setting in variable.settings:
            if setting not in documented:
                errors.append(f"{variable.name} sets {setting!r}, which is not a documented setting")
    return "\n".join(out)


def _table(cls: type, rows: list[Setting], errors: list[str]) -> str:
    summary = (inspect.getdoc(cls) or "").split("\n\n", 1)[0].replace("\n", " ")
    where = "" if cls.__module__ == "sessionward.core.config" else f" (`{cls.__module__}`)"
    out = [f"### `{cls.__name__}`{where}\n", _rst_to_md(summary) + "\n"]
    out.append("| setting | type | default | environment variable | meaning and accepted values |")
    out.append("|---|---|---|---|---|")
    for setting in rows:
        if not setting.description:
            errors.append(
                f"setting {setting.path} has no description in the 'Attributes:' section of {cls.__name__}'s docstring"
            )
        accepts = "; ".join(_cell(item) for item in setting.accepts)
        meaning = _markdown_inline(_rst_to_md(setting.description))
        if accepts:
            meaning += f"<br>**Accepts:** {accepts}"
        variables = "<br>".join(_code(name) for name in setting.variables) or "—"
        out.append(
            f'| <span id="{_anchor(setting.path)}"></span>{_code(setting.path)} | {_code(setting.type_text)} '
            f"| {_code(setting.default)} | {variables} | {meaning} |"
        )
    out.append("")
    return "\n".join(out)


def render_variables() -> str:
    """Return the Markdown table of every ``SESSIONWARD_*`` variable."""
    from sessionward.core.env import VARIABLES

    out = ["| variable | accepts | sets | read by |", "|---|---|---|---|"]
    for variable in VARIABLES:
        parts = [f'<a href="#{_anchor(setting)}">{_code(setting)}</a>' for setting in variable.settings]
        if variable.summary:
            parts.append(_markdown_inline(_rst_to_md(variable.summary)))
        out.append(
            f'| <span id="{variable.name.lower()}"></span>{_code(variable.name)} | {_cell(variable.accepts)} '
            f"| {'<br>'.join(parts)} | {_cell(variable.read_by)} |"
        )
    return "\n".join(out) + "\n"


def render_presets() -> str:
    """Return the table of timeout presets."""
    from sessionward.core.config import PRESETS

    out = ["| preset | idle timeout | absolute timeout | renewal interval |", "|---|---|---|---|"]
    for name, policy in PRESETS.items():
        out.append(
            f"| `{name}` | {_duration(policy.idle_timeout_s)} | {_duration(policy.absolute_timeout_s)} "
            f"| {_duration(policy.renewal_interval_s)} |"
        )
    return "\n".join(out) + "\n"


def _duration(seconds: float) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h ({seconds:g} s)"
    if seconds and seconds % 60 == 0:
        return f"{seconds / 60:g} min ({seconds:g} s)"
    return f"{seconds:g} s"


def _anchor(path: str) -> str:
    return "setting-" + path.replace(".", "-").replace("_", "-")


def _markdown_inline(text: str) -> str:
    """Render the little Markdown a docstring sentence holds (code spans) as HTML."""
    escaped = html.escape(text)
    return re.sub(r"`([^`]+)`", lambda m: f"<code>{m.group(1)}</code>", escaped).replace("|", "&#124;")
