"""clinassay's own progress (issue 16 item 5): one bar per stage, moved by callbacks that retrieval and
audit take (they never import clinassay/output.py): texts encoded (corpus index, encoder cache,
evaluation mentions), steps trained (both trainers, through a TrainerCallback; their own tqdm stays
off), pairs audited by `calibrate`. The counts of a stage add up to its total; -q draws nothing."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from clinassay import output
from clinassay.cli import main
from test_retrieval_support import DATA, FakeEncoder

pytestmark = pytest.mark.timeout(300)
ANSI = re.compile(r"\x1b\[")


class Recorder:
    """An `advance(n, total)` that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, n: int, total: int) -> None:
        self.calls.append((n, total))

    def adds_up(self) -> bool:
        return bool(self.calls) and sum(n for n, _ in self.calls) == self.calls[-1][1]


class RecordedStages:
    """A `Stages` that records each stage's calls by description."""

    def __init__(self) -> None:
        self.stages: dict[str, Recorder] = {}

    @contextmanager
    def __call__(self, description: str, unit: str):
        yield self.stages.setdefault(description, Recorder())


# ------------------------------------------------------------------------------ the bar itself
def test_a_bar_without_a_total_is_drawn_at_its_first_move_with_the_total_it_is_given(capsys):
    with output.Bar(None, "encode", unit="text", enabled=True):
        pass
    assert capsys.readouterr().err == ""  # nothing to do: nothing drawn
    with output.Bar(None, "train", unit="step", enabled=True) as bar:
        bar(0, 10)
        bar(6, 10)
        bar(0, 6)  # early stopping: the steps taken are the total
    err = capsys.readouterr().err
    assert re.search(r"train: 100%.* 6/6 ", err) and not ANSI.search(err), err
    with output.Bar(None, "quiet", enabled=False) as bar:
        bar(3, 3)
    assert capsys.readouterr().err == ""
    output.set_level(output.QUIET)
    try:
        assert output.stage_bars() is None and not output.Bar(None, "x").enabled
    finally:
        output.set_level(output.NORMAL)


# ------------------------------------------------------------------------------ texts encoded
def test_corpus_encoding_reports_every_text_once_and_nothing_when_cached(tmp_path, labelled_terminology):
    from clinassay.retrieval.corpus import build_corpus
    from clinassay.retrieval.index import corpus_embeddings

    corpus = build_corpus(labelled_terminology, languages=("en", "es", "fr"))
    encoder, progress = FakeEncoder(), Recorder()
    vectors = corpus_embeddings(encoder, corpus, cache_dir=tmp_path, batch_size=1, progress=progress)
    assert len(progress.calls) > 1 and progress.adds_up()  # chunks of 16 texts at batch 1
    assert {total for _, total in progress.calls} == {len(corpus.texts)}
    np.testing.assert_array_equal(vectors, encoder.encode(list(corpus.texts)))  # chunked, in the corpus's order
    again = Recorder()
    corpus_embeddings(encoder, corpus, cache_dir=tmp_path, batch_size=1, progress=again)
    assert again.calls == []


def test_the_encoder_cache_reports_the_texts_it_lacked(tmp_path):
    from clinassay.retrieval.encoder_cache import EmbeddingCache

    cache, encoder = EmbeddingCache(tmp_path, shard_size=20), FakeEncoder()
    texts = [f"text {i}" for i in range(50)] + ["text 1"]
    progress = Recorder()
    out = cache.get_or_encode(encoder, texts, kind="passage", batch_size=1, progress=progress)
    assert progress.adds_up() and progress.calls[-1][1] == 50  # distinct texts, across shards
    np.testing.assert_array_equal(out, encoder.encode(texts))
    more = Recorder()
    cache.get_or_encode(encoder, texts + ["new one", "new two"], kind="passage", progress=more)
    assert more.calls == [(2, 2)]


def test_the_audits_cached_encoder_keeps_one_running_total_and_leaves_its_bar_behind_when_shipped(tmp_path):
    from clinassay.retrieval.encoder_cache import DiskCachedEncoder

    progress = Recorder()
    encoder = DiskCachedEncoder(FakeEncoder(), tmp_path, progress=progress)
    encoder.encode(["a", "b", "c"], kind="passage")
    encoder.encode_cached(["d", "e"])
    encoder.encode(["a", "b"], kind="passage")  # cached: nothing more
    encoder.encode(["mention"], kind="query")  # not through the cache: the audit's bar counts pairs
    assert progress.calls == [(3, 3), (2, 5)]
    assert pickle.loads(pickle.dumps(encoder)).progress is None  # Ray's actors get no bar


def _evaluate_config(tmp_path: Path) -> Path:
    codes = sorted({line.split("\t")[1] for line in (DATA / "eval.tsv").read_text(encoding="utf-8").splitlines()[1:]})
    path = tmp_path / "clinassay.toml"
    path.write_text(f"[retrieval]\ncache_dir = '{tmp_path / 'cache'}'\nbootstrap_samples = 10\n"
                    f"[retrieval.corpus]\nlanguages = ['en', 'es']\nengine = 'torch'\ncodes = {json.dumps(codes)}\n",
                    encoding="utf-8")
    return path


def test_evaluate_draws_a_bar_per_encoding_with_v_and_nothing_with_q(tmp_path, capsys):
    config = _evaluate_config(tmp_path)
    args = ["evaluate", "--model", "minilm-en", "--eval-set", str(DATA / "eval.tsv"), "--config", str(config)]
    assert main([*args, "--out", str(tmp_path / "q"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    (passages,) = [p for p in (tmp_path / "cache").glob("*/passage")]
    shutil.rmtree(passages)  # the corpus encoded again: its bar drawn
    assert main([*args, "--out", str(tmp_path / "v"), "-v"]) == 0
    err = capsys.readouterr().err
    texts = json.loads((tmp_path / "v" / "metrics.json").read_text(encoding="utf-8"))["coverage"]["items"]
    corpus = re.search(r"encode corpus: 100%.* (\d+)/\1 ", err)
    assert corpus and int(corpus[1]) > 0, err[-1000:]
    assert re.search(rf"encode mentions: 100%.* {texts}/{texts} ", err), err[-1000:]
    assert not ANSI.search(err)


# ------------------------------------------------------------------------------ steps trained
def test_both_trainers_report_their_steps_and_keep_their_own_bar_off(tmp_path, monkeypatch):
    """Two steps of each trainer on minilm-en (packaged, offline): the steps reach the callback, and
    transformers' own progress bar (its ProgressCallback, which `disable_tqdm=False` would add) is
    never started: a test that fails if it comes back on."""
    from transformers.trainer_callback import ProgressCallback

    from clinassay.retrieval.config import BiEncoderConfig, RerankerConfig
    from clinassay.retrieval.models import load_encoder, resolve_model_path
    from clinassay.retrieval.reranker import train_reranker
    from clinassay.retrieval.biencoder import train_biencoder, training_placement

    started = []
    monkeypatch.setattr(ProgressCallback, "on_train_begin", lambda self, *a, **k: started.append(self))
    placement = training_placement("cpu", "fp32")
    mentions = ["dolor de cabeza", "fractura de fémur", "infección urinaria", "tos seca"]
    titles = ["Headache", "Fracture of femur", "Urinary tract infection", "Cough"]
    rows = [{"anchor": m, "positive": t, "negative_1": titles[(i + 1) % 4]} for i, (m, t) in enumerate(zip(mentions, titles))]
    base = load_encoder("minilm-en", device="cpu").sentence_transformer()
    biencoder, reranker = Recorder(), Recorder()
    bi = BiEncoderConfig(max_steps=2, batch_size=2, eval_steps=1, freeze_embeddings=True)
    train_biencoder(base, rows, out_dir=tmp_path / "biencoder", config=bi, seed=0, log=lambda _: None,
                    placement=placement, progress=biencoder)
    rr = RerankerConfig(max_steps=2, batch_size=2, max_seq_length=32)
    train_reranker(resolve_model_path("minilm-en"), rows, out_dir=tmp_path / "reranker", config=rr, seed=0,
                   log=lambda _: None, placement=placement, progress=reranker)
    for steps in (biencoder, reranker):
        assert steps.calls[0] == (0, 2) and steps.adds_up() and steps.calls[-1][1] == 2, steps.calls
    assert started == []


def _audited(tmp_path: Path) -> Path:
    from audit_fixtures import write_audit_folder

    lines = [{"mention": "infección urinaria", "code": "N39.0", "language": "es", "model": "terminology:who"}]
    return write_audit_folder(tmp_path / "audit", lines)


def test_train_passes_its_stages_a_bar_each_with_v_and_none_with_q(tmp_path, monkeypatch, capsys):
    """The command's wiring (training itself is the slow suite's): `train_model` gets `stage_bars`."""
    from clinassay.retrieval import train as training

    def fake_train_model(data, out, *, config, log, progress):
        seen.append(progress)
        if progress is not None:
            with progress("train biencoder", "step") as advance:
                advance(0, 3)
                advance(3, 3)
        return {"data": {"pairs": 1}, "base_model": "fake"}

    seen: list = []
    monkeypatch.setattr(training, "train_model", fake_train_model)
    data = _audited(tmp_path)
    assert main(["train", str(data), "--out", str(tmp_path / "m"), "-q"]) == 0
    assert capsys.readouterr() == ("", "") and seen == [None]
    assert main(["train", str(data), "--out", str(tmp_path / "m"), "-v"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"train biencoder: 100%.* 3/3 ", captured.err) and "model written" in captured.out
    assert main(["train", str(data), "--out", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().err == ""  # stderr not a terminal, no -v: no bar


# ------------------------------------------------------------------------------ pairs audited
def test_calibration_reports_every_pair_audited(tmp_path, capsys):
    from clinassay.audit import AuditConfig
    from clinassay.audit.calibration import run_calibration
    from test_audit_calibration import FAST, _write

    pairs, eval_set, toml = _write(tmp_path, {"gate": {"min_recall": {"misspelling": 0.0}}})
    progress = Recorder()
    result = run_calibration(pairs, tmp_path / "direct", config=AuditConfig.model_validate(FAST), eval_path=eval_set,
                             sample=20, seed=2, progress=progress)
    assert progress.calls[0] == (0, result.audited) and progress.adds_up()
    assert {total for _, total in progress.calls} == {result.audited}

    args = ["calibrate", str(pairs), "--config", str(toml), "--eval-set", str(eval_set), "--sample", "20", "--seed", "2"]
    assert main([*args, "--out", str(tmp_path / "q"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main([*args, "--out", str(tmp_path / "v"), "-v"]) == 0
    captured = capsys.readouterr()
    assert re.search(rf"calibrate: 100%.* {result.audited}/{result.audited} ", captured.err), captured.err[-500:]
    assert f"{result.originals} originals + {result.copies} planted copies audited" in captured.out
