"""`clinassay train`: audited pairs -> MODEL_DIR with both stages, the corpus index and a model card.

    MODEL_DIR/biencoder/   stage 1, a whole sentence-transformers model: `SentenceTransformer(path)`
                           loads it; with the document side frozen (the default) a `Router` whose
                           `query` route is trained and whose `document` route is the base model
    MODEL_DIR/reranker/    stage 2, unless disabled: `CrossEncoder(path)` loads it (+ fusion.json)
    MODEL_DIR/index/       faiss index + the corpus it was built from
    MODEL_DIR/model_card.json, README.md (a Hugging Face Hub card: YAML front matter, then the facts)

`clinassay export MODEL_DIR --to DIR` (retrieval.export) turns it into one folder to publish.
(Runs trained before the Router was saved whole hold the query side only in biencoder/; they still
search, and export rebuilds the whole model from the base named in the card.)

Heavy libraries load inside the functions, after the audit check has passed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from clinassay.retrieval.audited_data import AuditedData
from clinassay.retrieval.config import RetrievalConfig
from clinassay.retrieval.corpus import corpus_from_config
from clinassay.retrieval.model_card import write_model_card
from clinassay.retrieval.progress import Stages, encode_reporting, stage
from clinassay.retrieval.training_data import siblings_of, examples_from_pairs, reranker_groups, split_by_code, stage1_rows, title_of
from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike


def _documents(corpus, term: TerminologyLike):
    def document(code: str, language: str) -> str:
        return corpus.document(code, language) if corpus.position(code) is not None else title_of(term, code)

    return document


def train_model(
    data: AuditedData,
    out: Path | str,
    *,
    config: RetrievalConfig | None = None,
    log: Callable[[str], None] = print,
    term: TerminologyLike | None = None,
    progress: Stages | None = None,
) -> dict:
    """Train both stages on audited data and write MODEL_DIR; returns the model card. `progress`
    (retrieval.progress) opens one stage per step of the work: texts encoded (corpus, mentions) and
    steps trained (each trainer)."""
    from clinassay.retrieval.index import CodeIndex, corpus_embeddings
    from clinassay.retrieval.models import load_encoder, resolve_model_path
    from clinassay.retrieval.biencoder import describe_placement, dev_evaluator, mine_with_index, train_biencoder, training_placement

    config = config or RetrievalConfig()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ClinassayInputError(f"--out {out} exists and is not empty: choose a new model directory")
    placement = training_placement(config.device, config.precision, config.report_to)
    log(f"[train] {describe_placement(placement)}")
    started = time.time()
    if term is None:
        from clinassay.terminology import load_terminology, normalize_code

        term = load_terminology()
    else:
        from clinassay.terminology import normalize_code
    bi = config.biencoder
    corpus = corpus_from_config(term, config.corpus)
    examples = examples_from_pairs(data.pairs, normalize=normalize_code)
    split = split_by_code(examples, dev_fraction=bi.dev_fraction, seed=config.seed)
    if not split.train:
        raise ClinassayInputError("no training pairs left after the dev split: lower biencoder.dev_fraction")
    log(f"[data] {len(examples)} examples: {len(split.train)} train, {len(split.dev)} dev (split by code); "
        f"corpus {len(corpus.codes)} codes, {len(corpus.texts)} label texts")

    base = load_encoder(config.base_model, device=placement["device"])
    log(f"[index] base corpus embeddings ({config.base_model}, cached by model and corpus)")
    with stage(progress, "encode corpus", "text") as advance:
        base_vectors = corpus_embeddings(base, corpus, cache_dir=config.cache_dir, batch_size=config.encode_batch_size,
                                         engine=config.corpus.engine, progress=advance)
    base_index = CodeIndex.build(corpus, base_vectors, kind="exact")

    mined: dict[int, list[str]] = {}
    if bi.mined_negatives > 0:
        log(f"[mining] nearest codes of {len(split.train)} mentions with the base model")
        with stage(progress, "encode mentions", "text") as advance:
            neighbours = mine_with_index(base, [e.mention for e in split.train], base_index, top_k=bi.mining_top_k,
                                         batch_size=config.encode_batch_size, progress=advance)
        # skip the very top neighbours: with noisy labels the nearest "negative" is often a true positive
        mined = {i: row[1:] for i, row in enumerate(neighbours)}
    rows = stage1_rows(split.train, term=term, corpus_codes=corpus.codes, mined=mined,
                       sibling_negatives=bi.sibling_negatives, mined_negatives=bi.mined_negatives, seed=config.seed)
    evaluator = None
    if split.dev:
        # dev corpus: the held-out codes and their siblings (the confusable neighbours), so that each
        # evaluation stays cheap; queries capped for the same reason
        dev = split.dev[: bi.max_dev_queries]
        neighbourhood = {e.code for e in dev}
        for code in sorted(neighbourhood):
            neighbourhood.update(siblings_of(term, code))
        docs = {code: title_of(term, code) for code in sorted(neighbourhood)}
        evaluator = dev_evaluator([e.mention for e in dev], [e.code for e in dev], docs, prompts=base.prompts)

    log(f"[biencoder] training on {len(rows)} rows from {config.base_model}")
    bi_dir = out / "biencoder"
    with stage(progress, "train biencoder", "step") as advance:
        bi_metrics = train_biencoder(base.sentence_transformer(), rows, out_dir=bi_dir, config=bi, seed=config.seed,
                                     evaluator=evaluator, log=log, placement=placement, progress=advance)

    trained = load_encoder(str(bi_dir), device=placement["device"])
    if bi.document_side == "frozen":
        vectors = base_vectors  # the document side is the base model: its cached corpus vectors are the index
    else:
        log("[index] re-encoding the corpus with the trained model")
        with stage(progress, "encode corpus", "text") as advance:
            vectors = corpus_embeddings(trained, corpus, cache_dir=config.cache_dir, batch_size=config.encode_batch_size,
                                        engine=config.corpus.engine, progress=advance)
    index = CodeIndex.build(corpus, vectors, kind=config.index, hnsw_m=config.hnsw_m, ef_search=config.hnsw_ef_search)
    index.save(out / "index")

    rr_metrics = None
    rr = config.reranker
    if rr.enabled:
        from clinassay.retrieval.reranker import train_reranker

        log(f"[reranker] stage-1 shortlists (top {rr.candidates_top_k}) for {len(split.train)} mentions")
        with stage(progress, "encode mentions", "text") as advance:
            queries = encode_reporting(trained, [e.mention for e in split.train], kind="query",
                                       batch_size=config.encode_batch_size, progress=advance)
        shortlist = index.search(queries, rr.candidates_top_k)
        groups = reranker_groups(split.train, [[c for c, _ in row] for row in shortlist],
                                 documents=_documents(corpus, term), negatives=rr.negatives, seed=config.seed,
                                 max_groups=rr.max_groups, siblings=lambda code: siblings_of(term, code),
                                 sibling_negatives=rr.sibling_negatives)
        if not groups:
            raise ClinassayInputError("no reranker groups could be built: too few candidate codes for reranker.negatives")
        backbone = rr.base_model or config.base_model
        log(f"[reranker] training on {len(groups)} groups from {backbone}")
        with stage(progress, "train reranker", "step") as advance:
            rr_metrics = train_reranker(resolve_model_path(backbone), groups, out_dir=out / "reranker", config=rr,
                                        seed=config.seed, log=log, placement=placement, progress=advance)
        fusion_split, split_name = fusion_items(term, corpus, split, limit=bi.max_dev_queries, seed=config.seed)
        if fusion_split:
            fusion = fit_fusion(out, fusion_split, trained, index, corpus=corpus, top_k=rr.candidates_top_k,
                                config=config, log=log, split=split_name)
            rr_metrics = {**(rr_metrics or {}), "fusion": fusion}

    card = {
        "base_model": config.base_model,
        "document_encoder": config.base_model if bi.document_side == "frozen" else "biencoder",
        "document_encoder_fingerprint": base.fingerprint if bi.document_side == "frozen" else trained.fingerprint,
        "query_encoder_fingerprint": trained.fingerprint,
        "reranker_backbone": (rr.base_model or config.base_model) if rr.enabled else None,
        "audit": {
            "manifest_sha256": data.manifest_sha256,
            "accepted_sha256": data.accepted_sha256,
            "verdict": data.manifest.get("verdict"),
        },
        "data": {
            **data.sizes(),
            "examples": len(examples),
            "train_examples": len(split.train),
            "dev_examples": len(split.dev),
            "dev_codes": len({e.code for e in split.dev}),
            "stage1_rows": len(rows),
            "reranker_groups": len(groups) if rr.enabled else 0,
        },
        "corpus": {
            "codes": len(corpus.codes), "texts": len(corpus.texts), "languages": list(corpus.languages),
            "fingerprint": corpus.fingerprint, "index": config.index,
        },
        "config": json.loads(config.model_dump_json()),
        "evaluation": {"biencoder": _clean(bi_metrics), "reranker": _clean(rr_metrics) if rr_metrics else None},
        "seed": config.seed,
        "training_seconds": round(time.time() - started, 1),
    }
    write_model_card(out, card)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    log(f"[done] {out} in {card['training_seconds']} s")
    return card


FUSION_MIN_ITEMS = 50


def fusion_items(term: TerminologyLike, corpus, split, *, limit: int, seed: int) -> tuple[list, str]:
    """The items the reranker's fusion weight is fitted on, and what they are. The dev split's own
    pairs are mostly labels that stage 1 already ranks first (0.90 MRR@10 measured): a weight fitted on
    them cannot see what a reranker adds. So: clinician-style items (acronyms, short forms, DATASUS
    abbreviations, inclusion terms; `heldout.clinician_heldout_items` with no exact labels) of the dev
    split's codes, which no training step saw and which are never evaluation items of a plan-aware
    held-out set; the dev split itself when fewer than FUSION_MIN_ITEMS such items exist."""
    from clinassay.retrieval.heldout import clinician_heldout_items

    dev_codes = {e.code for e in split.dev}
    languages = sorted({e.language for e in split.dev})
    if dev_codes and languages:
        items, _ = clinician_heldout_items(
            term, codes=corpus.codes, languages=languages, per_language=max(1, limit // len(languages)),
            exclude=[c for c in corpus.codes if c not in dev_codes], seed=seed, max_label_share=0.0,
        )
        if len(items) >= FUSION_MIN_ITEMS:
            return items[:limit], f"{len(items[:limit])} clinician-style items of dev codes"
    dev = split.dev[:limit]
    return dev, f"{len(dev)} dev-split pairs (too few clinician-style items of dev codes)"


def fit_fusion(out: Path, dev: list, encoder, index, *, corpus, top_k: int, config: RetrievalConfig,
               log: Callable[[str], None] = print, split: str = "dev split") -> dict:
    """Fit the reranker's weight against stage 1 on `dev` (`fusion_items`: anything with mention, code
    and language) and save it beside the reranker."""
    from clinassay.retrieval.reranker import fit_fusion_weight, load_reranker, save_fusion

    mentions = [e.mention for e in dev]
    shortlists = index.search(encoder.encode(mentions, kind="query", batch_size=config.encode_batch_size), top_k)
    fusion = fit_fusion_weight(load_reranker(out / "reranker"), mentions, [e.code for e in dev], shortlists,
                               corpus=corpus, languages=[e.language for e in dev])
    fusion["split"] = split
    save_fusion(out / "reranker", fusion)
    log(f"[reranker] fusion weight {fusion['weight']} on {split} "
        f"(dev MRR@10: stage 1 {fusion['dev_mrr@10'][0.0]}, reranker alone {fusion['dev_mrr@10'][1.0]}, "
        f"fused {fusion['dev_mrr@10'][fusion['weight']]})")
    return fusion


def _clean(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}
