"""What clinassay prints, and where: one place for every command.

- stdout: what a command tells you (summaries, verdicts, the stage log of `run`, results); nothing at
  all under `-q` (stdout is muted for the command, library prints included);
- stderr: errors and warnings (always), and clinassay's own progress bars: one per stage, only when
  stderr is a terminal or with `-v`, never under `-q`; on a file or pipe (with `-v`) a bar is plain
  ASCII, redrawn rarely, with no escape codes.

Libraries are quiet by default: transformers / sentence-transformers / huggingface_hub / datasets
progress bars and load reports, LiteLLM's logs, library warnings, aiohttp's "Unclosed client
session" at exit. `-v` gives them back. `session()` (entered by `clinassay.cli.main`) applies the
level and puts everything it changed back when the command ends, so a command run in-process (tests,
`clinassay run`'s stages) leaves no trace; a nested `main()` inherits the level of the outer one.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager, redirect_stdout
from typing import Any, Callable, Iterator

import typer

QUIET, NORMAL, VERBOSE = -1, 0, 1
_level = NORMAL

QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",          # huggingface_hub, and transformers' bars ("Loading weights")
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",            # the "LOAD REPORT" and advisory warnings
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TQDM_DISABLE": "1",                          # plain tqdm in libraries ("Computing widget examples")
    "LITELLM_LOG": "ERROR",
}
"""Set (when the user has not set them) for the length of a command at the default and quiet levels;
also reaches subprocesses (generation's worker processes)."""

QUIET_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "sentence_transformers",
                 "transformers", "huggingface_hub", "datasets", "faiss", "urllib3", "filelock")
"""Library loggers raised to ERROR at the default level (their INFO/WARNING chatter is not for users)."""


def level() -> int:
    return _level


def set_level(value: int) -> None:
    """Set the verbosity (QUIET, NORMAL, VERBOSE) and quiet or restore the libraries to match."""
    global _level
    _level = value
    if _state is not None:
        _state.apply(value)


def info(line: str) -> None:
    """A summary or a stage line: stdout (muted under -q)."""
    if _level > QUIET:
        typer.echo(line)


def failure(line: str) -> None:
    """Why a gate failed: with the summary on stdout; on stderr under -q, where the summary is not shown."""
    typer.echo(line, err=_level <= QUIET)


def detail(line: str) -> None:
    """Only with -v (stdout)."""
    if _level >= VERBOSE:
        typer.echo(line)


def note(line: str) -> None:
    """Something the user may want to act on, but not an error: stderr, except under -q."""
    if _level > QUIET:
        typer.echo(f"note: {line}", err=True)


def warning(line: str) -> None:
    typer.echo(f"warning: {line}", err=True)


def error(line: str) -> None:
    typer.echo(f"error: {line}", err=True)


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def show_progress() -> bool:
    """Whether clinassay draws its progress bars: on a terminal, or asked for with -v; never with -q."""
    return _level >= VERBOSE or (_level > QUIET and stderr_is_terminal())


class Bar:
    """One stage's progress bar on stderr (tqdm), or nothing when `show_progress()` says no.

    `advance(n)` moves it; use it as a context manager (`with Bar(total, "audit", unit="pair") as bar`).
    A library call that knows the total itself gets the bar as its callback: `bar(n, total)` (the
    `advance(n, total)` of retrieval.progress) moves it and sets the total, which may change. Without a
    total to start with, the bar is drawn at its first move: a stage with nothing to do (texts all
    cached) draws nothing."""

    def __init__(self, total: int | None, description: str, *, unit: str = "it", enabled: bool | None = None) -> None:
        self.total, self.description, self.unit = total, description, unit
        self.enabled = show_progress() if enabled is None else enabled
        self._bar: Any = None

    def __enter__(self) -> "Bar":
        if self.enabled and self.total is not None:
            self._open()
        return self

    def _open(self) -> None:
        from tqdm import tqdm

        from clinassay.generation.progress import tqdm_style

        self._bar = tqdm(total=self.total, desc=self.description, unit=self.unit, file=sys.stderr,
                         **tqdm_style(), disable=False)

    def advance(self, n: int = 1, total: int | None = None) -> None:
        if not self.enabled:
            return
        if total is not None:
            self.total = total
        if self._bar is None:
            self._open()
        elif total is not None and self._bar.total != total:
            self._bar.total = total
            self._bar.refresh()
        self._bar.update(n)

    def __call__(self, n: int, total: int | None = None) -> None:
        self.advance(n, total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def stage_bars() -> Callable[[str, str], Bar] | None:
    """For a library call with several stages (retrieval.progress's `Stages`: `train_model`, a
    `Retriever`): `stages(description, unit)` opens a Bar per stage. None when no bar would be drawn."""
    if not show_progress():
        return None
    return lambda description, unit: Bar(None, description, unit=unit)


# ------------------------------------------------------------------------------- libraries
class _UnclosedSessionFilter(logging.Filter):
    """aiohttp reports sessions that LiteLLM leaves open (garbage-collected at exit) on asyncio's logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not message.startswith(("Unclosed client session", "Unclosed connector"))


class _LibraryState:
    """What `session()` changed in the environment, loggers and warning filters, to put it back."""

    def __init__(self) -> None:
        self.environment: dict[str, str | None] = {}
        self.loggers: dict[str, int] = {}
        self.filter = _UnclosedSessionFilter()
        self.warnings: Any = None
        self.library_calls: list[Any] = []
        self.quiet = False
        self.muted: Any = None

    def apply(self, level: int) -> None:
        quiet = level < VERBOSE
        if quiet != self.quiet:
            self.restore()
            if quiet:
                self._quiet()
        self._mute(level <= QUIET)

    def _mute(self, mute: bool) -> None:
        if mute and self.muted is None:
            self.muted = redirect_stdout(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - closed in _mute
            self.muted.__enter__()
        elif not mute and self.muted is not None:
            target = self.muted._new_target
            self.muted.__exit__(None, None, None)
            target.close()
            self.muted = None

    def _quiet(self) -> None:
        self.quiet = True
        for name, value in QUIET_ENVIRONMENT.items():
            if name not in os.environ:
                self.environment[name] = None
                os.environ[name] = value
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            self.loggers[name] = logger.level
            logger.setLevel(max(logger.level, logging.ERROR))
        logging.getLogger("asyncio").addFilter(self.filter)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.filterwarnings("ignore")  # libraries' UserWarning/FutureWarning/ResourceWarning at import or exit
        warnings.filterwarnings("default", module=r"clinassay(\.|$)")
        self._already_imported()

    def _already_imported(self) -> None:
        """Libraries read the environment at import: those imported before this command are told directly."""
        transformers_logging = sys.modules.get("transformers.utils.logging")
        if transformers_logging is not None:
            before, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
            transformers_logging.set_verbosity_error()
            transformers_logging.disable_progress_bar()
            self.library_calls.append(lambda: (transformers_logging.set_verbosity(before),
                                               transformers_logging.enable_progress_bar() if bars else None))
        hub_utils = sys.modules.get("huggingface_hub.utils")
        if hub_utils is not None and not hub_utils.are_progress_bars_disabled():
            hub_utils.disable_progress_bars()
            self.library_calls.append(hub_utils.enable_progress_bars)
        datasets_logging = sys.modules.get("datasets.utils.logging")
        if datasets_logging is not None and datasets_logging.is_progress_bar_enabled():
            datasets_logging.disable_progress_bar()
            self.library_calls.append(datasets_logging.enable_progress_bar)

    def restore(self) -> None:
        self._mute(False)
        if not self.quiet:
            return
        self.quiet = False
        for name, value in self.environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.environment.clear()
        for name, lvl in self.loggers.items():
            logging.getLogger(name).setLevel(lvl)
        self.loggers.clear()
        logging.getLogger("asyncio").removeFilter(self.filter)
        if self.warnings is not None:
            self.warnings.__exit__(None, None, None)
            self.warnings = None
        for call in reversed(self.library_calls):
            call()
        self.library_calls.clear()


_state: _LibraryState | None = None


@contextmanager
def session() -> Iterator[None]:
    """One command's output settings: libraries quiet unless -v; everything restored at the end.
    Nested (a stage of `clinassay run` calling `main` again), it keeps the outer level and state."""
    global _state, _level
    if _state is not None:
        outer = _level
        try:
            yield
        finally:
            set_level(outer)
        return
    outer = _level
    _state = _LibraryState()
    _state.apply(_level)
    try:
        yield
    finally:
        _state.restore()
        _state = None
        _level = outer
