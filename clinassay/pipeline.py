"""`clinassay run`: generate -> audit (gate) -> train -> evaluate (gate) -> report.

Each stage is the same command a user would run by hand, invoked in-process with its own output
folder under the run directory. A stage records the hashes of its inputs in `stage.json`; a rerun skips
a stage whose inputs did not change and resumes an interrupted generation. A failed gate stops the
chain (exit 1) after writing a report that says why.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clinassay.config import STAGES, ClinassayConfig

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2

CommandRunner = Callable[[Sequence[str]], int]


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


@dataclass
class StageResult:
    name: str
    exit_code: int
    skipped: bool = False
    seconds: float = 0.0


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


def _section_digest(config: ClinassayConfig, *sections: str) -> str:
    dumped = {name: getattr(config, name).model_dump(mode="json") for name in sections}
    return _text_digest(json.dumps(dumped, sort_keys=True))


def stage_inputs(plan: RunPlan, stage: str) -> dict[str, str | None]:
    """What a stage depends on; if none of it changed since the last success, the stage is skipped."""
    run = plan.config.run
    eval_digest = file_digest(plan.eval_set) if plan.eval_set else None
    if stage == "generate":
        return {"config": _section_digest(plan.config, "terminology", "generation", "run")}
    if stage == "audit":
        return {
            "config": _section_digest(plan.config, "terminology", "audit"),
            "pairs": file_digest(plan.pairs),
            "eval_set": eval_digest,
            "reference": file_digest(run.reference) if run.reference else None,
        }
    if stage == "train":
        return {
            "config": _section_digest(plan.config, "terminology", "retrieval"),
            "audit_manifest": file_digest(plan.audit_dir / "manifest.json"),
        }
    if stage == "evaluate":
        return {
            "config": _section_digest(plan.config, "retrieval", "run"),
            "model": file_digest(plan.model_dir / "model_card.md") or file_digest(plan.model_dir),
            "eval_set": eval_digest,
        }
    if stage == "report":
        return {
            "config": _section_digest(plan.config, "reports"),
            "audit": file_digest(plan.audit_dir / "summary.json"),
            "evaluation": file_digest(plan.candidate_dir / "metrics.json"),
        }
    raise ValueError(f"unknown stage {stage!r}")


def _stage_record(plan: RunPlan, stage: str) -> Path:
    return plan.out / stage / "stage.json"


def _is_up_to_date(plan: RunPlan, stage: str, inputs: dict[str, str | None]) -> bool:
    record = _stage_record(plan, stage)
    if not record.is_file():
        return False
    saved = json.loads(record.read_text())
    return saved.get("status") == "done" and saved.get("inputs") == inputs


def _clear_if_stale(plan: RunPlan, stage: str, inputs: dict[str, str | None]) -> None:
    """Outputs made from other inputs are removed, so a resume never mixes two configurations."""
    record = _stage_record(plan, stage)
    if record.is_file() and json.loads(record.read_text()).get("inputs") != inputs:
        shutil.rmtree(plan.out / stage)


def _write_record(plan: RunPlan, stage: str, inputs: dict[str, str | None], exit_code: int, seconds: float) -> None:
    record = _stage_record(plan, stage)
    record.parent.mkdir(parents=True, exist_ok=True)
    status = "done" if exit_code == EXIT_OK else ("gate_failed" if exit_code == EXIT_GATE_FAILED else "error")
    payload = {"stage": stage, "status": status, "exit_code": exit_code, "inputs": inputs, "seconds": round(seconds, 1)}
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(record)


# Every format, every time: CI reads report.xml exactly when a gate failed.
REPORT_FORMATS: tuple[tuple[str, str], ...] = (("html", ".html"), ("markdown", ".md"), ("junit", ".xml"))


def report_commands(plan: RunPlan) -> list[list[str]]:
    return [_report_command(plan, fmt, plan.report_path.with_suffix(suffix)) for fmt, suffix in REPORT_FORMATS]


def stage_commands(plan: RunPlan, stage: str) -> list[list[str]]:
    """The CLI invocations that make up a stage (a user can run exactly these by hand)."""
    cfg = str(plan.config_path)
    run = plan.config.run
    if stage == "generate":
        commands = []
        if not run.eval_set and run.heldout_per_language:
            commands.append(["data", "heldout-labels", "--config", cfg, "--out", str(plan.eval_set),
                             "--per-language", str(run.heldout_per_language)])
        command = ["generate", "--config", cfg, "--out", str(plan.pairs)]
        if plan.pairs.exists():
            command.append("--resume")
        return [*commands, command]
    if stage == "audit":
        command = ["audit", str(plan.pairs), "--out", str(plan.audit_dir), "--config", cfg]
        if plan.eval_set:
            command += ["--eval-set", str(plan.eval_set)]
        if run.reference and run.reference.is_file():
            command += ["--reference", str(run.reference)]
        return [command]
    if stage == "train":
        return [["train", "--data", str(plan.audit_dir), "--out", str(plan.model_dir), "--config", cfg]]
    if stage == "evaluate":
        if not plan.eval_set:
            return []
        rerank = ["--rerank"] if run.rerank else []
        commands = []
        baseline_metrics = Path(run.baseline)
        if not (baseline_metrics.suffix == ".json" and baseline_metrics.is_file()):
            commands.append(["evaluate", "--model", run.baseline, "--eval-set", str(plan.eval_set),
                             "--out", str(plan.baseline_dir), "--config", cfg])
            baseline_metrics = plan.baseline_dir / "metrics.json"
        commands.append(["evaluate", "--model", str(plan.model_dir), "--eval-set", str(plan.eval_set),
                         "--out", str(plan.candidate_dir), "--config", cfg, *rerank,
                         "--baseline", str(baseline_metrics)])
        return commands
    if stage == "report":
        return report_commands(plan)
    raise ValueError(f"unknown stage {stage!r}")


def _report_command(plan: RunPlan, fmt: str, out: Path) -> list[str]:
    command = ["report", str(plan.audit_dir), "--out", str(out), "--format", fmt, "--config", str(plan.config_path)]
    # baseline first: the report shows the candidate's deltas against it side by side
    for folder in (plan.baseline_dir, plan.candidate_dir):
        if (folder / "metrics.json").is_file():
            command += ["--eval", str(folder)]
    return command


def selected_stages(start: str | None, until: str | None) -> list[str]:
    first = STAGES.index(start) if start else 0
    last = STAGES.index(until) if until else len(STAGES) - 1
    if first > last:
        raise ValueError(f"--from {start} comes after --until {until}")
    return list(STAGES[first : last + 1])


def run_chain(plan: RunPlan, stages: Sequence[str], *, invoke: CommandRunner, log: Callable[[str], None]) -> int:
    """Run the stages in order; stop at the first failure, but always try to leave a report behind."""
    plan.out.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        inputs = stage_inputs(plan, stage)
        if _is_up_to_date(plan, stage, inputs):
            log(f"[{stage}] inputs unchanged since the last run: skipped")
            plan.results.append(StageResult(stage, EXIT_OK, skipped=True))
            continue
        _clear_if_stale(plan, stage, inputs)
        log(f"[{stage}] running")
        reference = plan.config.run.reference
        if stage == "audit" and reference and not reference.is_file():
            log(f"  reference mentions {reference} not found: drift and synthetic-vs-real checks are skipped")
        started = time.monotonic()
        exit_code = EXIT_OK
        for command in stage_commands(plan, stage):
            log("  $ clinassay " + " ".join(command))
            code = invoke(command)
            exit_code = exit_code if exit_code != EXIT_OK else code
            if exit_code != EXIT_OK and stage != "report":  # one format failing still leaves the others
                break
        seconds = time.monotonic() - started
        _write_record(plan, stage, inputs, exit_code, seconds)
        plan.results.append(StageResult(stage, exit_code, seconds=seconds))
        if exit_code != EXIT_OK:
            verdict = "gate failed" if exit_code == EXIT_GATE_FAILED else "failed"
            log(f"[{stage}] {verdict} (exit {exit_code}) after {seconds:.0f} s")
            if stage != "report" and plan.audit_dir.joinpath("summary.json").is_file():
                for command in report_commands(plan):
                    invoke(command)
                log(f"report: {plan.report_path}")
            return exit_code
        log(f"[{stage}] done in {seconds:.0f} s")
    return EXIT_OK
