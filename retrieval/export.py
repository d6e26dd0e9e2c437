"""`clinassay export MODEL_DIR --to DIR`: one folder to publish on the Hugging Face Hub
(`hf upload ORG/NAME DIR`), which loads with the plain sentence-transformers classes and still
searches with clinassay:

    DIR/                    stage 1 at the top: `SentenceTransformer(DIR)` (or the Hub id);
                            `encode_query` / `encode_document` encode as clinassay does
    DIR/reranker/           stage 2: `CrossEncoder(DIR/reranker)` (+ fusion.json, the fitted weight)
    DIR/index/              the faiss index and its corpus: `clinassay search --model DIR`
    DIR/model_card.json     MODEL_DIR's card, unchanged (evaluations name the model by its hash)
    DIR/README.md           the Hub card: YAML front matter with base_model, language, license,
                            tags, datasets and a model-index of the evaluations given

A MODEL_DIR trained before stage 1 was saved whole (biencoder/ holds the query side only, the
codes were encoded by the base model) is exported whole too: the base model named in the card is
loaded, checked against the fingerprint the card recorded, and put in as the document route.

Before the folder is renamed into place, the exported model is loaded with the plain class and
checked: its document route re-encodes the first corpus texts to the index's vectors, and its query
route encodes as MODEL_DIR's stage 1 does (cosine >= CHECK_COSINE).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clinassay.audit.export import staged_folder
from clinassay.audit.manifest import file_sha256
from clinassay.retrieval.metrics_file import METRICS_FILE, MetricsFile, load_metrics
from clinassay.retrieval.model_card import HubCard, render_model_card
from clinassay.retrieval.searcher import CARD_FILE, biencoder_dir, is_model_dir
from clinassay.terminology.errors import ClinassayInputError

CHECK_TEXTS = 32
CHECK_COSINE = 0.9999
QUERY_PROBES = ("infección del tracto urinario", "douleur thoracique", "fractura de fémur", "chronic kidney disease")
KEPT_APART = {"README.md", "model_card.json", "reranker", "index", "biencoder"}  # never copied as stage-1 files


@dataclass(frozen=True)
class ModelExport:
    folder: Path
    stage1: str  # "router" (query + document routes), "shared" (one model for both), "rebuilt" (an older run)
    reranker: bool
    evaluations: int
    document_cosine: float  # worst cosine between re-encoded corpus texts and the index's vectors
    query_cosine: float  # worst cosine between the plain class's and clinassay's query vectors

    def describe(self) -> str:
        stage1 = {"router": "stage 1 with its query and document routes",
                  "shared": "stage 1 (one model for queries and codes)",
                  "rebuilt": "stage 1 rebuilt whole from the base model (an older run)"}[self.stage1]
        parts = [stage1, "reranker/" if self.reranker else "no reranker", "index/",
                 f"a Hub card with {self.evaluations} evaluation(s)" if self.evaluations else "a Hub card (no evaluation given)"]
        return (f"model written to {self.folder}: {', '.join(parts)}; checked with the plain classes "
                f"(worst cosine: codes {self.document_cosine:.6f}, queries {self.query_cosine:.6f})")


def card_sha256(model_dir: Path | str) -> str:
    """What `clinassay evaluate` records as the model's sha256 (retrieval.evaluator.model_hash)."""
    return file_sha256(Path(model_dir) / CARD_FILE)


def load_evaluation(path: Path | str, *, model_dir: Path) -> MetricsFile:
    """A `metrics.json` (or its folder) of `clinassay evaluate` on this very model, or exit 2."""
    metrics = load_metrics(path)
    if metrics.model.sha256 != card_sha256(model_dir):
        raise ClinassayInputError(f"--eval {path}: an evaluation of another model ({metrics.model.name}); "
                                  f"the card lists only evaluations of {model_dir}")
    return metrics


def run_evaluation(model_dir: Path, *, log: Callable[[str], None] = print) -> Path | None:
    """The candidate evaluation `clinassay run` keeps beside MODEL_DIR (RUN/train/model ->
    RUN/evaluate/candidate/metrics.json), when it evaluated this model. One that does not validate is
    not listed, and the log says why (give it with --eval to be refused with the key that is wrong)."""
    candidate = model_dir.resolve().parent.parent / "evaluate" / "candidate" / METRICS_FILE
    if not candidate.is_file():
        return None
    try:
        metrics = load_metrics(candidate)
    except ClinassayInputError as exc:
        log(f"[export] not listing the evaluation beside the model: {exc}")
        return None
    return candidate if metrics.model.sha256 == card_sha256(model_dir) else None


def stage1_kind(folder: Path) -> str:
    """"router" when the saved model has query and document routes, else "single"."""
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    return "router" if any(str(m.get("type", "")).endswith(".Router") for m in modules) else "single"


def export_model(
    model_dir: Path | str,
    to: Path | str,
    *,
    evaluations: Sequence[Path | str] = (),
    license: str | None = None,
    datasets: Sequence[str] = (),
    name: str | None = None,
    log: Callable[[str], None] = print,
) -> ModelExport:
    model_dir = Path(model_dir)
    if not is_model_dir(model_dir):
        raise ClinassayInputError(f"{model_dir} is not a clinassay model directory ({CARD_FILE} and index/ expected)")
    source = biencoder_dir(model_dir)
    if not (source / "modules.json").is_file():
        raise ClinassayInputError(f"{source} holds no sentence-transformers model (modules.json not found)")
    card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
    paths = list(evaluations)
    if not paths and (found := run_evaluation(model_dir, log=log)) is not None:
        log(f"[export] evaluation found beside the model: {found}")
        paths = [found]
    metrics = [load_evaluation(p, model_dir=model_dir) for p in paths]
    name = name or Path(to).name
    with staged_folder(to, source=model_dir) as staging:
        kind = stage1_kind(source)
        if kind == "single" and card.get("document_encoder") not in (None, "biencoder"):
            log(f"[export] {source} holds the query side only (an older run): adding {card['document_encoder']} "
                "as the document route")
            _rebuild_router(source, card, staging)
            kind = "rebuilt"
        else:
            _copy_stage1(source, staging)
            kind = "router" if kind == "router" else "shared"
        has_reranker = (model_dir / "reranker").is_dir()
        if has_reranker:
            shutil.copytree(model_dir / "reranker", staging / "reranker")
        shutil.copytree(model_dir / "index", staging / "index")
        shutil.copy2(model_dir / CARD_FILE, staging / CARD_FILE)
        hub = HubCard(evaluations=metrics, license=license, datasets=tuple(datasets), name=name,
                      biencoder_ref=name, reranker_ref=f"{name}/reranker")
        (staging / "README.md").write_text(render_model_card(card, hub), encoding="utf-8")
        document_cosine, query_cosine = check_export(staging, model_dir)
    return ModelExport(folder=Path(to), stage1=kind, reranker=has_reranker, evaluations=len(metrics),
                       document_cosine=document_cosine, query_cosine=query_cosine)


def _copy_stage1(source: Path, target: Path) -> None:
    for entry in source.iterdir():
        if entry.name in KEPT_APART:
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name)
        else:
            shutil.copy2(entry, target / entry.name)


def _rebuild_router(source: Path, card: dict, target: Path) -> None:
    """Query route from `source`, document route from the base model the card names (the one whose
    vectors are in the index), saved as one Router model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router

    from clinassay.retrieval.models import load_encoder

    base = load_encoder(card["document_encoder"], device="cpu")
    expected = card.get("document_encoder_fingerprint")
    if expected and base.fingerprint != expected:
        raise ClinassayInputError(
            f"the base model {card['document_encoder']!r} here is not the one that encoded {source.parent}'s index "
            f"(fingerprint {base.fingerprint} != {expected}): export it where it was trained")
    base_model = base.sentence_transformer()
    query = SentenceTransformer(str(source), device="cpu")
    router = Router.for_query_document(query_modules=list(query), document_modules=list(base_model), default_route="query")
    model = SentenceTransformer(modules=[router], device="cpu", similarity_fn_name=base_model.similarity_fn_name)
    model.prompts = dict(base_model.prompts or {})
    model.save(str(target))
    (target / "README.md").unlink(missing_ok=True)  # the folder's card is clinassay's


def check_export(folder: Path, model_dir: Path) -> tuple[float, float]:
    """Load `folder` with the plain classes; the worst cosine of its code vectors against the index
    and of its query vectors against MODEL_DIR's stage 1 through clinassay. Below CHECK_COSINE: exit 2."""
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.cross_encoder import CrossEncoder

    from clinassay.retrieval.index import CodeIndex
    from clinassay.retrieval.models import load_encoder

    model = SentenceTransformer(str(folder), device="cpu")
    index = CodeIndex.load(folder / "index")
    n = min(CHECK_TEXTS, index.index.ntotal)
    texts = list(index.corpus.texts[:n])
    stored = index.index.reconstruct_n(0, n)
    encoded = model.encode_document(texts, normalize_embeddings=True, convert_to_numpy=True)
    document_cosine = float(np.min(np.sum(stored * encoded, axis=1))) if n else 1.0
    plain = model.encode_query(list(QUERY_PROBES), normalize_embeddings=True, convert_to_numpy=True)
    ours = load_encoder(str(biencoder_dir(model_dir)), device="cpu").encode(list(QUERY_PROBES), kind="query")
    query_cosine = float(np.min(np.sum(plain * ours, axis=1)))
    if document_cosine < CHECK_COSINE:
        raise ClinassayInputError(
            f"{model_dir}: the exported stage 1 does not encode the codes as its index holds them (cosine "
            f"{document_cosine:.4f} < {CHECK_COSINE}): the index was built by another model")
    if query_cosine < CHECK_COSINE:
        raise ClinassayInputError(f"{model_dir}: the exported stage 1 does not encode queries as clinassay does "
                                  f"(cosine {query_cosine:.4f} < {CHECK_COSINE})")
    if (folder / "reranker").is_dir():
        CrossEncoder(str(folder / "reranker"), device="cpu").predict([(QUERY_PROBES[0], texts[0] if texts else "")])
    return round(document_cosine, 6), round(query_cosine, 6)
