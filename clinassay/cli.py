"""The `clinassay` command. A thin layer: commands live in `clinassay.commands.*`, each registering
itself on the app; every exception is mapped to an exit code here, once, so that no command needs its
own try/except and no traceback reaches the user:

0 pass, 1 gate failed, 2 bad input or usage (one line naming the file), 3 internal error (one line and
the path of a log holding the traceback), 4 generation failed (every LLM request of a model failed, or
the embedded model would not start), 130 interrupted.

Every command takes `-v/--verbose` and `-q/--quiet` (before or after its name: `clinassay -q audit ...`
or `clinassay audit ... -q`); what they change is in `clinassay.output`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
import tempfile
import tomllib
import traceback
from datetime import datetime
from pathlib import Path, PurePath

import typer
from pydantic import ValidationError
from typer.exceptions import TyperException

from clinassay import __version__, output
from clinassay.commands import COMMAND_MODULES
from clinassay.terminology.errors import ClinassayInputError

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_GENERATION_FAILED = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
MAX_MESSAGE_CHARS = 400
"""An error line quotes the user's input (a 5,000-character code, a line of garbage): cut it there."""

app = typer.Typer(
    name="clinassay",
    help="Audit LLM-made (mention, ICD-10 code) pairs and gate the clinical-coding retrievers trained on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: "[audit]" is a config section, not rich markup
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clinassay {__version__}")
        raise typer.Exit()


VERBOSE_HELP = ("More output: library logs and warnings, and progress bars even when stderr is not a terminal "
                "(every command: also after its name).")
QUIET_HELP = "Print nothing but errors and warnings: no summaries, no progress bars (every command: also after its name)."


def _verbose(value: bool) -> None:
    if value:  # `main` takes the flag out of the arguments first; this serves other callers of `app`
        output.set_level(output.VERBOSE)


def _quiet(value: bool) -> None:
    if value:
        output.set_level(output.QUIET)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", callback=_verbose, is_eager=True, help=VERBOSE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", callback=_quiet, is_eager=True, help=QUIET_HELP),
) -> None:
    """clinassay: synthetic clinical-coding data you can trust, or a clear reason why not."""


for _module in COMMAND_MODULES:
    _module.register(app)


VERBOSITY_FLAGS = {"-v": output.VERBOSE, "--verbose": output.VERBOSE, "-q": output.QUIET, "--quiet": output.QUIET}


def take_verbosity(argv: list[str]) -> tuple[int | None, list[str]]:
    """`-v/--verbose` and `-q/--quiet` wherever they stand before `--` (`clinassay -q audit ...` or
    `clinassay audit ... -q`), and the arguments without them; the last one given wins."""
    level, rest = None, []
    for i, arg in enumerate(argv):
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in VERBOSITY_FLAGS:
            level = VERBOSITY_FLAGS[arg]
        else:
            rest.append(arg)
    return level, rest


def main(argv: list[str] | None = None) -> int:
    level, args = take_verbosity(list(sys.argv[1:] if argv is None else argv))
    with output.session():
        if level is not None:
            output.set_level(level)
        return _main(args, argv)


def _main(args: list[str], argv: list[str] | None) -> int:
    try:
        result = app(args=args, prog_name="clinassay", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except TyperException as exc:  # usage errors: bad flags, missing arguments, bad values
        show = getattr(exc, "show", None)
        show() if show else typer.echo(f"error: {exc.format_message()}", err=True)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - the one place that turns exceptions into exit codes
        return exit_code_of(exc, argv)
    return result if isinstance(result, int) else EXIT_OK


def exit_code_of(exc: Exception, argv: list[str] | None) -> int:
    """The one mapping of an exception to a message on stderr and an exit code (2 bad input, 4 generation
    failed, 3 a bug, with its traceback in a crash log); `clinassay run` uses it for every stage."""
    from clinassay.generation.errors import GenerationError

    message = bad_input_message(exc)
    if message is not None:
        typer.echo(f"error: {message}", err=True)
        return EXIT_BAD_INPUT
    if isinstance(exc, GenerationError):
        typer.echo(f"error: generation failed: {one_line(str(exc))}", err=True)
        return EXIT_GENERATION_FAILED
    log = _write_crash_log(exc, argv)
    where = f"the traceback is in {log}" if log else "no log could be written"
    typer.echo(f"internal error (a bug in clinassay, not in your input): {type(exc).__name__}: "
               f"{one_line(str(exc))}; {where}", err=True)
    return EXIT_INTERNAL


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Whitespace collapsed, cut at `limit`, lone surrogates escaped (they cannot be printed)."""
    text = " ".join(text.split()).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def bad_input_message(exc: BaseException) -> str | None:
    """The one line for an exception that means "bad input" (exit 2), None when it means a bug."""
    if isinstance(exc, ClinassayInputError):
        return one_line(str(exc))
    where = _where(exc)
    if isinstance(exc, OSError):
        if exc.filename is None and exc.errno not in _ENVIRONMENT_ERRNOS:
            return None
        return one_line(_os_message(exc))
    if isinstance(exc, ValidationError):
        from clinassay.config import describe_validation

        return one_line(f"{where}{describe_validation(exc)}")
    if isinstance(exc, json.JSONDecodeError):
        return one_line(f"{where}not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno} of the JSON text)")
    if isinstance(exc, tomllib.TOMLDecodeError):
        return one_line(f"{where}not valid TOML: {exc}")
    if isinstance(exc, UnicodeDecodeError):
        return one_line(f"{where}not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                        "save it as UTF-8")
    if isinstance(exc, UnicodeEncodeError):
        return one_line(f"{where}cannot write {exc.object[exc.start:exc.end]!a} as UTF-8 ({exc.reason}): "
                        "the input holds a lone surrogate escape; remove it")
    if isinstance(exc, RecursionError):
        return one_line(f"{where}nested too deeply to read")
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return one_line(f"{where}a number too long to read ({exc})")
    return None


def _os_message(exc: OSError) -> str:
    path = exc.filename if exc.filename is not None else ""
    if isinstance(path, bytes):
        path = path.decode("utf-8", "backslashreplace")
    path = str(path)
    if isinstance(exc, FileNotFoundError):
        what = "not found"
    elif isinstance(exc, IsADirectoryError):
        what = "is a directory, not a file"
    elif isinstance(exc, NotADirectoryError):
        what = "a part of the path is not a directory"
    elif isinstance(exc, PermissionError):
        what = "permission denied"
    elif exc.errno == errno.EROFS:
        what = "read-only file system"
    elif exc.errno == errno.ENOSPC:
        what = "no space left on the device"
    else:
        what = exc.strerror or str(exc)
    return f"{path}: {what}" if path else what


_LINE_NAMES = ("lineno", "line_no", "line_number", "line")


def _where(exc: BaseException) -> str:
    """'FILE:LINE: ' of the file being read when `exc` was raised, or ''.

    Found in the raising frames' locals (innermost first: an open file, else a Path to a file, and a
    `lineno`), so that a reader that lets a UnicodeDecodeError or a JSONDecodeError escape still gets
    the file named, without a try/except around every read. A reader that knows better raises
    ClinassayInputError with its own message.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    line = None  # a line number may sit in an inner frame (parse_line(line_no, text)) below the file's
    for frame in reversed(frames):
        opened = path = None
        for name, value in list(frame.f_locals.items()):
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                opened = opened or value.name
            elif isinstance(value, PurePath) and path is None and _is_file(value):
                path = str(value)
            elif name in _LINE_NAMES and line is None and isinstance(value, int) and not isinstance(value, bool):
                line = value
        found = opened or path
        if found:
            return f"{found}:{line}: " if line else f"{found}: "
    return ""


def _is_file(path: PurePath) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def crash_log_dir() -> Path:
    """Where tracebacks of internal errors go: the XDG state folder (~/.local/state/clinassay)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "clinassay"


def _write_crash_log(exc: BaseException, argv: list[str] | None) -> Path | None:
    """The traceback in a file (the user sees one line); the system temp folder if the state folder is not writable."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    text = (f"clinassay {__version__}, Python {sys.version.split()[0]}\n"
            f"argv: {argv if argv is not None else sys.argv[1:]!a}\n\n"
            + "".join(traceback.format_exception(exc)))
    for folder in (crash_log_dir(), Path(tempfile.gettempdir()) / "clinassay"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f"crash-{stamp}-", suffix=".log", dir=folder)
            with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text)
            return Path(name)
        except OSError:
            continue
    return None


if __name__ == "__main__":
    sys.exit(main())
