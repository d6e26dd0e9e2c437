"""The chain's bookkeeping: order, skipping unchanged stages, resuming, stopping on a failed gate.

The stages themselves are tested in their own packages; here each command is recorded and its effect
simulated, so that the orchestration logic is pinned down without training a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinassay.config import load_config
from clinassay.pipeline import STAGES, Call, RunPlan, run_chain, selected_stages


def _plan(tmp_path: Path, *, eval_set: bool = True, heldout: int = 0) -> RunPlan:
    cfg = tmp_path / "run.toml"
    lines = ["[run]", 'out = "out"', f"heldout_per_language = {heldout}"]
    if eval_set:
        (tmp_path / "eval.tsv").write_text("mention\tcode\tlanguage\nitu\tN39.0\tes\n")
        lines.append('eval_set = "eval.tsv"')
    cfg.write_text("\n".join(lines) + "\n")
    config = load_config(cfg)
    return RunPlan(config_path=cfg, config=config, out=config.run.out)


class FakeCommands:
    """Simulates each command's outputs; `fail` maps a command name to the exit code it returns."""

    def __init__(self, plan: RunPlan, fail: dict[str, int] | None = None) -> None:
        self.plan, self.fail, self.calls = plan, fail or {}, []

    def __call__(self, call: Call) -> int:
        self.calls.append(call)
        name = call.command.split()[0]
        out = Path(call.kwargs["out"]) if call.kwargs.get("out") else None
        if name == "data":
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("mention\tcode\tlanguage\ninfection urinaire\tN39.0\tfr\n")
        elif name == "generate":
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as fh:
                fh.write('{"mention": "itu", "code": "N39.0", "language": "es"}\n')
        elif name == "audit":
            out.mkdir(parents=True, exist_ok=True)
            (out / "summary.json").write_text(json.dumps({"verdict": "pass"}))
            (out / "manifest.json").write_text(json.dumps({"verdict": "pass"}))
        elif name == "train":
            out.mkdir(parents=True, exist_ok=True)
            (out / "model_card.md").write_text("model")
        elif name in ("evaluate", "report"):
            target = out / "metrics.json" if name == "evaluate" else out
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("{}")
        return self.fail.get(name, 0)


def test_runs_every_stage_in_order_then_skips_them_all(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    fake = FakeCommands(plan)
    assert run_chain(plan, selected_stages(None, None), execute=fake, log=lambda _: None) == 0
    assert [c.command for c in fake.calls] == ["generate", "audit", "train", "evaluate", "evaluate", "report", "report", "report"]
    baseline, candidate = fake.calls[3], fake.calls[4]
    assert baseline.kwargs["model"] == "me5-small"
    assert str(candidate.kwargs["baseline"]).endswith("baseline/metrics.json")
    assert "--baseline" in candidate.shown() and candidate.shown().startswith("clinassay evaluate --model ")

    again = FakeCommands(plan)
    plan.results.clear()
    assert run_chain(plan, selected_stages(None, None), execute=again, log=lambda _: None) == 0
    assert again.calls == [] and all(r.skipped for r in plan.results)


def test_changed_input_reruns_only_downstream_stages(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    run_chain(plan, selected_stages(None, None), execute=FakeCommands(plan), log=lambda _: None)
    (tmp_path / "eval.tsv").write_text("mention\tcode\tlanguage\ncistitis\tN30.90\tes\n")
    fake = FakeCommands(plan)
    run_chain(plan, selected_stages(None, None), execute=fake, log=lambda _: None)
    assert "generate" not in [c.command for c in fake.calls]
    assert [c.command for c in fake.calls][:1] == ["audit"]


def test_interrupted_generation_is_resumed(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    plan.pairs.parent.mkdir(parents=True)
    plan.pairs.write_text('{"mention": "itu", "code": "N39.0", "language": "es"}\n')  # no stage.json: interrupted
    fake = FakeCommands(plan)
    run_chain(plan, ["generate"], execute=fake, log=lambda _: None)
    assert fake.calls[0].kwargs["resume"] is True and "--resume" in fake.calls[0].shown()


def test_generation_with_a_changed_config_starts_afresh(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    run_chain(plan, ["generate"], execute=FakeCommands(plan), log=lambda _: None)
    plan.config.generation = type(plan.config.generation).model_validate(plan.config.generation.model_dump())
    (plan.out / "generate" / "stage.json").write_text(json.dumps({"status": "done", "inputs": {"config": "old"}}))
    fake = FakeCommands(plan)
    run_chain(plan, ["generate"], execute=fake, log=lambda _: None)
    assert fake.calls[0].kwargs["resume"] is False
    assert plan.pairs.read_text().count("\n") == 1


@pytest.mark.parametrize("stage", ["audit", "evaluate"])
def test_failed_gate_stops_the_chain_with_exit_1_and_a_report(tmp_path: Path, stage: str) -> None:
    plan = _plan(tmp_path)
    fake = FakeCommands(plan, fail={stage: 1})
    assert run_chain(plan, selected_stages(None, None), execute=fake, log=lambda _: None) == 1
    names = [c.command for c in fake.calls]
    assert names[-1] == "report" and "train" not in names[names.index(stage):]
    record = json.loads((plan.out / stage / "stage.json").read_text())
    assert record["status"] == "gate_failed"
    # the failed stage is not skipped next time
    fake2 = FakeCommands(plan)
    run_chain(plan, selected_stages(None, None), execute=fake2, log=lambda _: None)
    assert stage in [c.command for c in fake2.calls]


def test_stage_window_is_validated() -> None:
    assert selected_stages("audit", "train") == ["audit", "train"]
    with pytest.raises(ValueError):
        selected_stages("report", "generate")


def test_heldout_labels_become_the_eval_set_when_none_is_given(tmp_path: Path) -> None:
    plan = _plan(tmp_path, eval_set=False, heldout=5)
    fake = FakeCommands(plan)
    assert run_chain(plan, selected_stages(None, None), execute=fake, log=lambda _: None) == 0
    names = [c.command for c in fake.calls]
    assert names[:2] == ["data heldout-labels", "generate"]
    heldout = fake.calls[0].kwargs["out"]
    audit = fake.calls[2]
    assert audit.kwargs["eval_set"] == heldout
    assert all(c.kwargs["eval_set"] == heldout for c in fake.calls if c.command == "evaluate")


def test_without_any_eval_set_the_chain_skips_evaluation(tmp_path: Path) -> None:
    plan = _plan(tmp_path, eval_set=False)
    fake = FakeCommands(plan)
    assert run_chain(plan, selected_stages(None, None), execute=fake, log=lambda _: None) == 0
    assert "evaluate" not in [c.command for c in fake.calls] and fake.calls[1].kwargs["eval_set"] is None


def test_a_missing_reference_is_skipped_with_a_note(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    plan.config.run.reference = tmp_path / "absent.tsv"
    lines: list[str] = []
    fake = FakeCommands(plan)
    assert run_chain(plan, ["generate", "audit"], execute=fake, log=lines.append) == 0
    assert fake.calls[-1].kwargs["reference"] is None
    assert any("absent.tsv not found" in line for line in lines)
    (tmp_path / "absent.tsv").write_text("mention\tcode\tlanguage\nitu\tN39.0\tes\n")
    fake = FakeCommands(plan)
    run_chain(plan, ["audit"], execute=fake, log=lines.append)
    assert str(fake.calls[-1].kwargs["reference"]).endswith("absent.tsv")


def test_a_stage_calls_the_command_function_with_its_defaults(tmp_path: Path) -> None:
    """No argv inside the chain: a call is the command's own function, with the defaults typer would give."""
    from clinassay.commands.retrieval import train
    from clinassay.pipeline import STAGE_BY_NAME

    plan = _plan(tmp_path)
    (call,) = STAGE_BY_NAME["train"].calls(plan)
    assert call.function is train and call.kwargs["audit_dir"] == plan.audit_dir
    assert call.shown().startswith(f"clinassay train {plan.audit_dir} --out ")  # the log line reruns as is
    seen = {}
    probe = Call("train", lambda audit_dir, out, config_file=None, max_steps=None: seen.update(locals()) or 0,
                 {"audit_dir": plan.audit_dir, "out": plan.model_dir})
    assert probe() == 0 and seen["max_steps"] is None
    assert STAGES == ("generate", "audit", "train", "evaluate", "report")


def test_exit_1_is_a_failed_gate_only_for_a_stage_with_a_gate(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    fake = FakeCommands(plan, fail={"generate": 1})
    assert run_chain(plan, ["generate"], execute=fake, log=lambda _: None) == 1
    assert json.loads((plan.out / "generate" / "stage.json").read_text())["status"] == "error"


def test_a_command_error_becomes_its_exit_code_not_a_traceback(tmp_path: Path, capsys) -> None:
    from clinassay.pipeline import run_call
    from clinassay.terminology.errors import ClinassayInputError

    def bad(**_):
        raise ClinassayInputError("pairs.jsonl: no pairs to audit")

    assert run_call(Call("audit", bad, {})) == 2
    assert "error: pairs.jsonl: no pairs to audit" in capsys.readouterr().err


def test_the_log_shows_each_call_as_the_command_a_user_would_type(tmp_path: Path) -> None:
    from clinassay.pipeline import STAGE_BY_NAME

    plan = _plan(tmp_path)
    shown = [c.shown() for c in STAGE_BY_NAME["report"].calls(plan)]
    assert [line.split("--format ")[1].split()[0] for line in shown] == ["html", "markdown", "junit"]
    assert all(line.startswith(f"clinassay report {plan.audit_dir} --out ") for line in shown)
