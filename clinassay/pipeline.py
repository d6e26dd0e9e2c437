"""`clinassay run`: generate -> audit (gate) -> train -> evaluate (gate) -> report.

Each stage is an object: what it depends on (`inputs`, hashed), the folder it owns, and the calls it
makes — the same Python functions the `clinassay` commands are, with the same arguments a user would
type as flags (the log shows each call as that command line, so any stage can be rerun by hand). No
argv is parsed inside the chain. A stage records its inputs' hashes in `stage.json`; a rerun skips a
stage whose inputs did not change and resumes an interrupted generation. A failed gate stops the chain
(exit 1) after writing a report that says why.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from clinassay.config import ClinassayConfig

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def file_digest(path: Path) -> str | None:
    """sha256 of a file, or of a folder's files (names and contents), or None if it does not exist."""
    if not path.exists():
        return None
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for item in files:
        h.update(item.relative_to(path if path.is_dir() else path.parent).as_posix().encode())
        with item.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _section_digest(config: ClinassayConfig, *sections: str) -> str:
    dumped = {name: getattr(config, name).model_dump(mode="json") for name in sections}
    return _text_digest(json.dumps(dumped, sort_keys=True))


@dataclass(frozen=True)
class Call:
    """One command of a stage, as a function call: `function(**kwargs)` is `clinassay COMMAND --flags`."""

    command: str  # e.g. "audit", "data heldout-labels"
    function: Callable[..., Any]
    kwargs: dict[str, Any]
    flags: tuple[tuple[str, str], ...] = ()  # keyword -> flag, for the log line; positional when the flag is ""

    def __call__(self) -> Any:
        return self.function(**{**_defaults(self.function), **self.kwargs})

    def shown(self) -> str:
        words = ["clinassay", *self.command.split()]
        named = dict(self.flags)
        for key, value in self.kwargs.items():
            flag = named.get(key, "--" + key.replace("_", "-"))
            if value is None or value is False:
                continue
            if value is True:
                words.append(flag)
            else:
                for item in value if isinstance(value, list) else [value]:
                    shown = str(item.value if isinstance(item, Enum) else item)
                    words += [shown] if flag == "" else [flag, shown]
        return " ".join(words)


def _defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """A command's defaults as plain values (typer keeps them in its Option/Argument objects)."""
    out = {}
    for name, param in inspect.signature(function).parameters.items():
        default = getattr(param.default, "default", param.default)
        if default is not inspect.Parameter.empty and default is not Ellipsis:
            out[name] = default
    return out


@dataclass(frozen=True)
class StageResult:
    name: str
    exit_code: int
    skipped: bool = False
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return "done" if self.exit_code == EXIT_OK else "gate_failed" if self.gate_failed else "error"

    @property
    def gate_failed(self) -> bool:
        return self.exit_code == EXIT_GATE_FAILED and STAGE_BY_NAME[self.name].has_gate


@dataclass
class RunPlan:
    """Paths of one run; every stage writes only inside its own folder."""

    config_path: Path
    config: ClinassayConfig
    out: Path
    results: list[StageResult] = field(default_factory=list)

    @property
    def pairs(self) -> Path:
        return self.out / "generate" / "pairs.jsonl"

    @property
    def eval_set(self) -> Path | None:
        """The configured evaluation set, or the held-out label set this run builds."""
        if self.config.run.eval_set:
            return self.config.run.eval_set
        if self.config.run.heldout_per_language:
            return self.out / "generate" / "heldout.tsv"
        return None

    @property
    def eval_digest(self) -> str | None:
        return file_digest(self.eval_set) if self.eval_set else None

    @property
    def audit_dir(self) -> Path:
        return self.out / "audit"

    @property
    def model_dir(self) -> Path:
        return self.out / "train" / "model"

    @property
    def baseline_dir(self) -> Path:
        return self.out / "evaluate" / "baseline"

    @property
    def candidate_dir(self) -> Path:
        return self.out / "evaluate" / "candidate"

    @property
    def report_path(self) -> Path:
        return self.out / "report" / "report.html"


class Stage:
    """A step of the chain: its inputs (what, when unchanged, lets a rerun skip it) and its calls."""

    name: ClassVar[str]
    has_gate: ClassVar[bool] = False  # exit 1 means "gate failed" only for a stage with a gate

    def inputs(self, plan: RunPlan) -> dict[str, str | None]:
        raise NotImplementedError

    def calls(self, plan: RunPlan) -> list[Call]:
        raise NotImplementedError

    def notes(self, plan: RunPlan) -> list[str]:
        return []

    def folder(self, plan: RunPlan) -> Path:
        return plan.out / self.name


class Generate(Stage):
    name = "generate"

    def inputs(self, plan: RunPlan) -> dict[str, str | None]:
        return {"config": _section_digest(plan.config, "terminology", "generation", "run")}

    def calls(self, plan: RunPlan) -> list[Call]:
        from clinassay.commands.generate import generate
        from clinassay.commands.heldout import heldout_labels

        run = plan.config.run
        calls = []
        if not run.eval_set and run.heldout_per_language:
            calls.append(Call("data heldout-labels", heldout_labels, {
                "config": plan.config_path, "out": plan.eval_set, "per_language": run.heldout_per_language}))
        calls.append(Call("generate", generate, {"config": plan.config_path, "out": plan.pairs,
                                                 "resume": plan.pairs.exists()}))
        return calls


class Audit(Stage):
    name = "audit"
    has_gate = True

    def inputs(self, plan: RunPlan) -> dict[str, str | None]:
        reference = plan.config.run.reference
        return {
            "config": _section_digest(plan.config, "terminology", "audit"),
            "pairs": file_digest(plan.pairs),
            "eval_set": plan.eval_digest,
            "reference": file_digest(reference) if reference else None,
        }

    def calls(self, plan: RunPlan) -> list[Call]:
        from clinassay.commands.audit import audit

        reference = plan.config.run.reference
        return [Call("audit", audit, {
            "pairs": plan.pairs, "out": plan.audit_dir, "config_file": plan.config_path, "eval_set": plan.eval_set,
            "reference": reference if reference and reference.is_file() else None,
        }, flags=(("pairs", ""), ("config_file", "--config")))]

    def notes(self, plan: RunPlan) -> list[str]:
        reference = plan.config.run.reference
        if reference and not reference.is_file():
            return [f"reference mentions {reference} not found: drift, synthetic-vs-real and coded-reference evidence for the fit check are skipped"]
        return []


class Train(Stage):
    name = "train"

    def inputs(self, plan: RunPlan) -> dict[str, str | None]:
        return {
            "config": _section_digest(plan.config, "terminology", "retrieval"),
            "audit_manifest": file_digest(plan.audit_dir / "manifest.json"),
        }

    def calls(self, plan: RunPlan) -> list[Call]:
        from clinassay.commands.retrieval import train

        return [Call("train", train, {"audit_dir": plan.audit_dir, "out": plan.model_dir, "config_file": plan.config_path},
                     flags=(("audit_dir", ""), ("config_file", "--config")))]


class Evaluate(Stage):
    name = "evaluate"
    has_gate = True

    def inputs(self, plan: RunPlan) -> dict[str, str | None]:
        # train writes model_card.json last, with the data, config and base model it trained from
        card = plan.model_dir / "model_card.json"
        return {
            "config": _section_digest(plan.config, "retrieval", "run"),
            "model": file_digest(card) if card.is_file() else file_digest(plan.model_dir),
            "eval_set": plan.eval_digest,
        }

    def calls(self, plan: RunPlan) -> list[Call]:
        from clinassay.commands.retrieval import evaluate

        if not plan.eval_set:
            return []
        run = plan.config.run
        flags = (("config_file", "--config"),)
        calls = []
        baseline_metrics = Path(run.baseline)
        if not (baseline_metrics.suffix == ".json" and baseline_metrics.is_file()):
            calls.append(Call("evaluate", evaluate, {"model": run.baseline, "eval_set": plan.eval_set,
                                                     "out": plan.baseline_dir, "config_file": plan.config_path}, flags))
            baseline_metrics = plan.baseline_dir / "metrics.json"
        calls.append(Call("evaluate", evaluate, {"model": str(plan.model_dir), "eval_set": plan.eval_set,
                                                 "out": plan.candidate_dir, "config_file": plan.config_path,
                                                 "rerank": run.rerank, "baseline": baseline_metrics}, flags))
        return calls


class Report(Stage):
    name = "report"
    # Every format, every time: CI reads report.xml exactly when a gate failed.
    FORMATS: ClassVar[tuple[tuple[str, str], ...]] = (("html", ".html"), ("markdown", ".md"), ("junit", ".xml"))

    def inputs(self, plan: RunPlan) -> dict[str, str | None]:
        return {
            "config": _section_digest(plan.config, "reports"),
            "audit": file_digest(plan.audit_dir / "summary.json"),
            "evaluation": file_digest(plan.candidate_dir / "metrics.json"),
        }

    def calls(self, plan: RunPlan) -> list[Call]:
        from clinassay.commands.report import ReportFormat, report

        # baseline first: the report shows the candidate's deltas against it side by side
        evals = [folder for folder in (plan.baseline_dir, plan.candidate_dir) if (folder / "metrics.json").is_file()]
        return [Call("report", report, {"source": plan.audit_dir, "out": plan.report_path.with_suffix(suffix),
                                        "fmt": ReportFormat(fmt), "config_file": plan.config_path, "eval_dirs": evals},
                     flags=(("source", ""), ("fmt", "--format"), ("config_file", "--config"), ("eval_dirs", "--eval")))
                for fmt, suffix in self.FORMATS]


CHAIN: tuple[Stage, ...] = (Generate(), Audit(), Train(), Evaluate(), Report())
STAGE_BY_NAME = {stage.name: stage for stage in CHAIN}
STAGES = tuple(STAGE_BY_NAME)


def selected_stages(start: str | None, until: str | None) -> list[str]:
    first = STAGES.index(start) if start else 0
    last = STAGES.index(until) if until else len(STAGES) - 1
    if first > last:
        raise ValueError(f"--from {start} comes after --until {until}")
    return list(STAGES[first : last + 1])


def run_call(call: Call) -> int:
    """A command's function called in-process, its outcome as the command's exit code (the CLI's one
    mapping of exceptions to exit codes, so a stage fails exactly as the command would)."""
    import typer

    from clinassay.cli import exit_code_of

    try:
        result = call()
    except typer.Exit as stop:
        return stop.exit_code
    except Exception as exc:  # noqa: BLE001 - mapped to the exit code the command would have given
        return exit_code_of(exc, [call.command])
    return result if isinstance(result, int) else EXIT_OK


def _stage_record(plan: RunPlan, stage: Stage) -> Path:
    return stage.folder(plan) / "stage.json"


def _is_up_to_date(plan: RunPlan, stage: Stage, inputs: dict[str, str | None]) -> bool:
    record = _stage_record(plan, stage)
    if not record.is_file():
        return False
    saved: dict[str, Any] = json.loads(record.read_text())
    return bool(saved.get("status") == "done" and saved.get("inputs") == inputs)


def _clear_if_stale(plan: RunPlan, stage: Stage, inputs: dict[str, str | None]) -> None:
    """Outputs made from other inputs are removed, so a resume never mixes two configurations."""
    record = _stage_record(plan, stage)
    if record.is_file() and json.loads(record.read_text()).get("inputs") != inputs:
        shutil.rmtree(stage.folder(plan))


def _write_record(plan: RunPlan, stage: Stage, inputs: dict[str, str | None], result: StageResult) -> None:
    record = _stage_record(plan, stage)
    record.parent.mkdir(parents=True, exist_ok=True)
    payload = {"stage": stage.name, "status": result.status, "exit_code": result.exit_code, "inputs": inputs,
               "seconds": round(result.seconds, 1)}
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(record)


def run_stage(plan: RunPlan, stage: Stage, *, execute: Callable[[Call], int], log: Callable[[str], None]) -> StageResult:
    inputs = stage.inputs(plan)
    if _is_up_to_date(plan, stage, inputs):
        log(f"[{stage.name}] inputs unchanged since the last run: skipped")
        return StageResult(stage.name, EXIT_OK, skipped=True)
    _clear_if_stale(plan, stage, inputs)
    log(f"[{stage.name}] running")
    for note in stage.notes(plan):
        log(f"  {note}")
    started = time.monotonic()
    exit_code = EXIT_OK
    for call in stage.calls(plan):
        log("  $ " + call.shown())
        code = execute(call)
        exit_code = exit_code if exit_code != EXIT_OK else code
        if exit_code != EXIT_OK and stage.name != "report":  # one format failing still leaves the others
            break
    result = StageResult(stage.name, exit_code, seconds=time.monotonic() - started)
    _write_record(plan, stage, inputs, result)
    return result


def run_chain(plan: RunPlan, stages: Sequence[str], *, execute: Callable[[Call], int] = run_call,
              log: Callable[[str], None]) -> int:
    """Run the stages in order; stop at the first failure, but always try to leave a report behind."""
    plan.out.mkdir(parents=True, exist_ok=True)
    for name in stages:
        stage = STAGE_BY_NAME[name]
        result = run_stage(plan, stage, execute=execute, log=log)
        plan.results.append(result)
        if result.exit_code != EXIT_OK:
            log(f"[{name}] {'gate failed' if result.gate_failed else 'failed'} (exit {result.exit_code}) "
                f"after {result.seconds:.0f} s")
            if name != "report" and plan.audit_dir.joinpath("summary.json").is_file():
                for call in STAGE_BY_NAME["report"].calls(plan):
                    execute(call)
                log(f"report: {plan.report_path}")
            return result.exit_code
        if not result.skipped:
            log(f"[{name}] done in {result.seconds:.0f} s")
    return EXIT_OK


REPORT_FORMATS = Report.FORMATS
