"""The `slrbench` command line (Typer + rich): one thin module per command.

User errors surface as one line on stderr and exit code 2 (`SlrbenchError`, and operating-system
errors a user can fix: a full disk, a read-only or missing folder, a file where a folder should
be); everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.text import Text

from slrbench.cli import (
    datasets,
    extract,
    fuse,
    importing,
    methods,
    prepare,
    profile,
    report,
    run,
    sweep,
)
from slrbench.cli.common import error_console
from slrbench.errors import EXIT_BAD_INPUT, SlrbenchError, os_error_message

app = typer.Typer(
    name="slrbench",
    help="Benchmark and leaderboard harness for isolated sign language recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (datasets, prepare, methods, run, sweep, fuse, report, profile):
    name = module.__name__.rpartition(".")[2]
    app.command(name)(getattr(module, name))
app.command("import")(importing.import_scores)  # `import` is a Python keyword
app.command("import-checkpoint")(importing.import_checkpoint)
app.command("extract-poses")(extract.extract_poses)

# Typer >= 0.2x vendors click; reach its ClickException through a public subclass. Typed as
# type[Any]: its module (click or typer._click) depends on the typer version, so no import names it.
ClickException: type[Any] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def main() -> None:
    """Console entry point: one-line errors and exit code 2 for bad input."""
    try:
        app(standalone_mode=False)
    except SlrbenchError as error:
        # A Text object is never parsed, so user text in the message stays literal.
        error_console.print(Text.assemble(("error:", "red"), f" {error}"), highlight=False,
                            soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except ClickException as error:
        # Click's usage block spans several lines; a bad value gets the same one line as ours.
        where = getattr(getattr(error, "ctx", None), "command_path", "slrbench")
        message = " ".join(error.format_message().split())
        error_console.print(Text.assemble(("error:", "red"),
                                          f" {message} (see `{where} --help`)"),
                            highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except OSError as error:
        fixable = os_error_message(error)
        if fixable is None:
            raise  # not something the user can fix: a bug, keep the traceback
        error_console.print(Text.assemble(("error:", "red"), f" {fixable}"), highlight=False,
                            soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except (typer.Abort, KeyboardInterrupt):
        error_console.print("interrupted: run the same command with --resume to continue")
        sys.exit(130)


__all__ = ["app", "main"]
