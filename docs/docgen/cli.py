"""The command-line reference, generated from the Click command definitions.

Every command of ``sessionward`` (the console script's entry point) gets its usage line,
its help text and a table of its arguments and options (type, default, environment
variable), exactly as Click knows them: a new option or command appears here by itself.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Iterator

import click


def walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Yield every command under ``command`` (itself first), with its full name."""
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], (*path, name))


def installed_command() -> click.Command:
    """Return the ``sessionward`` command as installed: the console script's entry point."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="sessionward")
    loaded = script.load()
    if not isinstance(loaded, click.Command):
        raise TypeError(f"the sessionward console script {script.value} is not a Click command")
    return loaded


def render() -> str:
    """Return the Markdown of the whole command tree."""
    main = installed_command()

    out: list[str] = []
    root_context = click.Context(main, info_name="sessionward")
    contexts: dict[tuple[str, ...], click.Context] = {("sessionward",): root_context}
    for path, command in walk(main, ("sessionward",)):
        parent = contexts.get(path[:-1])
        context = contexts.get(path) or click.Context(command, info_name=path[-1], parent=parent)
        contexts[path] = context
        level = "##" if len(path) <= 2 else "###"
        out.append(f"{level} `{' '.join(path)}`\n")
        out.append("```text\n" + command.get_usage(context).strip() + "\n```\n")
        text = inspect.cleandoc(command.help or "")
        if text:
            out.append(_paragraphs(text) + "\n")
        rows = list(_parameters(command, context))
        if rows:
            out.append("| argument or option | type | default | environment | meaning |")
            out.append("|---|---|---|---|---|")
            out.extend(rows)
            out.append("")
        if isinstance(command, click.Group):
            names = ", ".join(f"`{name}`" for name in sorted(command.commands))
            out.append(f"Commands: {names}.\n")
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    # Click's \b marks a paragraph to keep as it is; Markdown needs nothing special.
    return html.escape(text.replace("\b\n", "\n"), quote=False)


def _parameters(command: click.Command, context: click.Context) -> Iterator[str]:
    for parameter in command.get_params(context):
        if isinstance(parameter, click.Option) and (parameter.hidden or parameter.name == "help"):
            continue
        if isinstance(parameter, click.Argument):
            names = f"`{parameter.human_readable_name}`"
            meaning = "required argument" if parameter.required else "argument"
        else:
            assert isinstance(parameter, click.Option)
            names = ", ".join(f"`{opt}`" for opt in (*parameter.opts, *parameter.secondary_opts))
            meaning = parameter.help or ""
        kind = "flag" if isinstance(parameter, click.Option) and parameter.is_flag else parameter.type.name
        default = _default(parameter, context)
        envvar = parameter.envvar if isinstance(parameter.envvar, str) else ", ".join(parameter.envvar or ())
        environment = f"`{envvar}`" if envvar else ""
        yield f"| {names} | {_cell(kind)} | {default} | {environment} | {_cell(meaning)} |"


def _default(parameter: click.Parameter, context: click.Context) -> str:
    if isinstance(parameter, click.Option) and parameter.is_flag:
        return ""
    value = parameter.get_default(context, call=False)
    if value is None or callable(value) or type(value).__name__ == "Sentinel":
        return ""
    return f"`{_cell(str(value))}`"


def _cell(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")
