"""The `clinassay` command. A thin layer: commands live in `clinassay.commands.*`, each registering
itself on the app; domain errors are caught only here and turned into exit codes CI can act on:
0 pass, 1 gate failed, 2 bad input or usage.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from clinassay import __version__
from clinassay.commands import COMMAND_MODULES
from terminology.errors import ClinassayInputError

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2

app = typer.Typer(
    name="clinassay",
    help="Audit LLM-made (mention, ICD-10 code) pairs and gate the clinical-coding retrievers trained on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clinassay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """clinassay: synthetic clinical-coding data you can trust, or a clear reason why not."""


for _module in COMMAND_MODULES:
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    try:
        result = app(args=argv, prog_name="clinassay", standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except TyperException as exc:  # usage errors: bad flags, missing arguments, bad values
        show = getattr(exc, "show", None)
        show() if show else typer.echo(f"error: {exc.format_message()}", err=True)
        return EXIT_BAD_INPUT
    except ClinassayInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
