"""The root command group: commands imported only when run, plain help text, one error style.

Why not Typer's defaults: importing every command module (and through them rich.progress, the lock and
wheelhouse stages) made `offlinepack --version` cost 0.3-0.6 s; rich help read bracketed defaults such as
`[auto]` as markup and dropped them; boxed usage errors wrapped at the terminal width. Here help is click's
plain layout (defaults kept, wrapped at the width), flags show plain metavars (`--jobs INT`, usage
`build [OPTIONS] LOCK`), and usage errors read like every other error: `error:` then `hint:`, exit 2.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

import typer
import typer.core
import typer.main

from offlinepack import exit_codes

try:  # typer 0.27+ vendors click as typer._click; older releases use click itself
    from typer import _click as click
except ImportError:  # pragma: no cover - depends on the installed typer
    import click  # type: ignore[no-redef]


def _keep_hyphenated_words_whole() -> None:
    """Help text must not break `--save-probabilities` or `offlinepack-runs.jsonl` at a hyphen: a flag or file
    name cut across two lines cannot be copied. click's wrap_text looks its TextWrapper up at each call."""
    try:  # a private module: a click or typer release without it keeps its own wrapping
        textwrap_module = importlib.import_module(f"{click.__name__}._textwrap")
        base = textwrap_module.TextWrapper
    except (ImportError, AttributeError):  # pragma: no cover - depends on the installed click
        return
    if getattr(base, "keeps_hyphens", False):
        return

    class WholeWordWrapper(base):  # type: ignore[misc, valid-type]
        keeps_hyphens = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["break_on_hyphens"] = False
            super().__init__(*args, **kwargs)

    textwrap_module.TextWrapper = WholeWordWrapper


_keep_hyphenated_words_whole()

# type labels as typer or click write them (`<list[str]>`, `<int range>`, `DIRECTORY`, `INTEGER RANGE`) -> the
# plain metavars click users know
_METAVARS = {"str": "TEXT", "text": "TEXT", "int": "INT", "integer": "INT", "float": "FLOAT", "file": "FILE",
             "filename": "FILE", "dir": "DIR", "directory": "DIR", "path": "PATH"}


def plain_metavar(label: str) -> str:
    """'<list[str]>' -> 'TEXT', '<int range>' -> 'INT', 'DIRECTORY' -> 'DIR', '<a|b>' -> 'a|b'."""
    label = label.strip("<> ")
    if label.lower().startswith("list[") and label.endswith("]"):
        label = label[len("list["):-1]
    label = label.removesuffix(" range").removesuffix(" RANGE")
    if "|" in label:  # choices are typed as they are shown
        return label
    return _METAVARS.get(label.lower(), label.upper())


# The methods below are where typer 0.24 (click), 0.27 and 0.29 (vendored click) build a parameter's name in
# the usage line and the help: a kernel runs whichever typer its image has (0.24 and 0.27 on Kaggle's).
class PlainArgument(typer.core.TyperArgument):
    """`LOCK` in the usage line and the help, not `{lock}`, `lock <file>` or `lock:FILE`."""

    @property
    def display_name_raw(self) -> str:  # typer 0.29: error messages and the help's name column
        return self._plain_name()

    def _plain_name(self) -> str:
        return self.metavar or (self.name or "").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self._plain_name() if self.required else f"[{self._plain_name()}]"
        return f"{name}..." if self.nargs != 1 else name

    def make_metavar(self, *args: Any, usage: bool = False, **kwargs: Any) -> str:  # typer 0.24-0.28
        name = self._plain_name()
        if usage and not self.required:
            name = f"[{name}]"
        return f"{name}..." if self.nargs != 1 else name


class PlainOption(typer.core.TyperOption):
    """`--jobs INT`, `--model TEXT`, `--force`: no `<bool>` or `<list[Path]>` tags."""

    def display_type_rich(self, ctx: Any) -> str | None:  # typer 0.29
        if self.metavar is not None:
            return self.metavar
        return plain_metavar(str(self.display_type(ctx)))

    def make_metavar(self, *args: Any, **kwargs: Any) -> str:  # typer 0.24-0.28
        if self.metavar is not None:
            return self.metavar
        return plain_metavar(super().make_metavar(*args, **kwargs))

    def get_runtime_param(self) -> Any:  # typer 0.29 converts every value through pydantic
        if getattr(self, "_runtime_param", None) is None and self.type_descriptor.annotation is bool:
            # a flag's value is already True, False or None: skipping pydantic's import (0.1 s) keeps
            # `offlinepack targets` and every `--help` fast
            try:  # private to typer 0.29: a release without it converts flags its own (slower) way
                from typer._coercion import PassThroughRuntimeParam

                self._runtime_param = PassThroughRuntimeParam(parameter_info=self.type_descriptor.parameter_info,
                                                              annotation=bool)
            except (ImportError, AttributeError, TypeError):  # pragma: no cover - depends on typer
                pass
        return super().get_runtime_param()


def _plain_help_option(option: Any) -> Any:
    if type(option) is typer.core.TyperOption:
        option.__class__ = PlainOption
    return option


class PlainCommand(typer.core.TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))


class PlainGroup(typer.core.TyperGroup):
    """Lists subcommands with their whole one-line help (click cuts it at 45 characters with '...')."""

    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def make_plain(command: Any) -> Any:
    """Plain help for a command and, for a group, all its subcommands (set on the objects typer built)."""
    command.rich_markup_mode = None
    for param in command.params:
        if type(param) is typer.core.TyperArgument:
            param.__class__ = PlainArgument
        elif type(param) is typer.core.TyperOption:
            param.__class__ = PlainOption
    if type(command) is typer.core.TyperGroup:
        command.__class__ = PlainGroup
    elif type(command) is typer.core.TyperCommand:
        command.__class__ = PlainCommand
    for sub in getattr(command, "commands", {}).values():
        make_plain(sub)
    return command


def load_command(name: str, target: str) -> Any:
    """'offlinepack.cli.build:build' -> the click command for it; a `typer.Typer` becomes a group."""
    module_name, _, attribute = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attribute)
    if isinstance(obj, typer.Typer):
        obj.rich_markup_mode = None
        command = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return make_plain(command)


# click >= 8.2 (and typer's vendored copies) raise this for a bare group; older ones print the help themselves
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _usage_error(error: Any, ctx: Any = None) -> typer.Exit:
    """A click error as `error:`/`hint:` lines on stderr (exit 2); a bare group prints its help (exit 0)."""
    if getattr(error, "ctx", None) is not None:
        ctx, path = error.ctx, error.ctx.command_path
    else:  # an option's own parse error carries no context: name the subcommand being parsed
        path = " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand])) if ctx else "offlinepack"
    if isinstance(error, _NO_ARGS_IS_HELP) and ctx is not None:
        typer.echo(ctx.get_help())
        return typer.Exit(exit_codes.OK)
    typer.echo(f"error: {error.format_message()}", err=True)
    typer.echo(f"hint: run `{path} --help` for the usage and every option", err=True)
    return typer.Exit(exit_codes.FAILED)


class LazyGroup(PlainGroup):
    """The root group: `commands` maps a name to ("module:attribute", one-line help) and a command's module is
    imported only when that command runs or shows its own help. `offlinepack --help` reads the table."""

    table: Mapping[str, tuple[str, str]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.table)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in self.table:
            return None
        if name not in self.commands:
            self.commands[name] = load_command(name, self.table[name][0])
        return self.commands[name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as error:
            close = difflib.get_close_matches(args[0], list(self.table)) if args else []
            if close and "Did you mean" not in error.message:
                error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, close))}?"
            raise

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in self.table.items()])

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.UsageError as error:
            raise _usage_error(error) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.ClickException as error:  # a subcommand's arguments, a file that cannot be opened
            raise _usage_error(error, ctx) from None


def with_table(table: Mapping[str, tuple[str, str]]) -> type[LazyGroup]:
    """A LazyGroup class bound to `table` (typer instantiates the class itself)."""
    return type("OfflinepackGroup", (LazyGroup,), {"table": dict(table), "__module__": __name__})


def output_survives_closed_pipe() -> None:
    """`offlinepack doctor | head -1` (or `2>&1 | head -1`): once the reader is gone, further output is dropped
    (the stream's file descriptor pointed at os.devnull) so the command finishes and exits with its own code,
    not 1 from a BrokenPipeError."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _PipeSafe):
            setattr(sys, name, _PipeSafe(stream))


class _PipeSafe:
    """A text stream that turns into os.devnull at its first BrokenPipeError instead of raising it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _drop_the_rest(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop_the_rest()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop_the_rest()
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
