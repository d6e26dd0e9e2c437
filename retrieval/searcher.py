"""Search: a trained MODEL_DIR or a baseline by name (`bm25`, `minilm-en`, `me5-small`, a Hugging
Face id or a path, zero-shot) behind one interface, for the CLI and for batch use:

    retriever = Retriever.load("runs/model")          # or Retriever.load("me5-small")
    hits = retriever.search(["infección urinaria"], language="es", k=10, rerank=True)

Heavy libraries load on first search, not on `load`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from clinassay.retrieval.config import RetrievalConfig
from clinassay.retrieval.corpus import CodeCorpus, corpus_from_config
from clinassay.retrieval.progress import Stages, encode_reporting, stage
from clinassay.terminology.errors import ClinassayInputError

CARD_FILE = "model_card.json"
SMALL_BATCH = 4  # interactive searches this small run single-threaded (see index.limited_threads)
BASELINES = ("bm25", "minilm-en", "me5-small")


@dataclass(frozen=True)
class Hit:
    rank: int
    code: str
    title: str
    score: float


def is_model_dir(path: str | Path) -> bool:
    """A MODEL_DIR of `clinassay train`, or its `clinassay export` (the bi-encoder at the top)."""
    return (Path(path) / CARD_FILE).is_file() and (Path(path) / "index").is_dir()


def biencoder_dir(model_dir: str | Path) -> Path:
    """Where a model directory keeps stage 1: `biencoder/` as `clinassay train` writes it (runs
    trained before the Router was saved whole hold the query side only there, which is all search
    needs: their index holds the base model's vectors), or the folder itself as `clinassay export`
    writes it, for `SentenceTransformer(path)` and the Hub."""
    model_dir = Path(model_dir)
    return model_dir / "biencoder" if (model_dir / "biencoder").is_dir() else model_dir


def load_encoder_any(name_or_path: str):
    """The encoders helper's `load_encoder` (names, HF ids, paths)."""
    from clinassay.retrieval.models import load_encoder

    return load_encoder(name_or_path)


class Retriever:
    """A stage-1 index (dense or BM25) and, for trained models, an optional stage-2 reranker."""

    def __init__(
        self,
        *,
        name: str,
        corpus: CodeCorpus | None = None,
        model_dir: Path | None = None,
        config: RetrievalConfig | None = None,
        progress: Stages | None = None,
    ) -> None:
        self.name = name
        self.model_dir = model_dir
        self.config = config or RetrievalConfig()
        self.progress = progress
        self._corpus = corpus
        self._index = None
        self._encoder = None
        self._reranker = None

    # construction ---------------------------------------------------------------------------
    @classmethod
    def load(cls, model: str | Path, *, config: RetrievalConfig | None = None, corpus: CodeCorpus | None = None,
             progress: Stages | None = None) -> "Retriever":
        """A MODEL_DIR written by `clinassay train`, or a baseline name/path evaluated zero-shot over
        the corpus described by `config.corpus` (or the `corpus` given). `progress`
        (retrieval.progress): a stage per encoding, texts encoded (a baseline's corpus, many mentions)."""
        if is_model_dir(model):
            model_dir = Path(model)
            card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
            saved = RetrievalConfig.model_validate(card.get("config", {}))
            return cls(name=str(model_dir), model_dir=model_dir, config=config or saved, progress=progress)
        model = str(model)
        if Path(model).exists() and not (Path(model) / "modules.json").is_file() and not (Path(model) / "config.json").is_file():
            raise ClinassayInputError(f"{model} is neither a clinassay model directory nor a sentence-transformers model")
        return cls(name=model, corpus=corpus, config=config, progress=progress)

    @property
    def is_trained(self) -> bool:
        return self.model_dir is not None

    @property
    def has_reranker(self) -> bool:
        return self.model_dir is not None and (self.model_dir / "reranker").is_dir()

    @property
    def corpus(self) -> CodeCorpus:
        if self._corpus is None:
            if self.model_dir is not None:
                self._corpus = self.index.corpus
            else:
                from clinassay.terminology import load_terminology

                self._corpus = corpus_from_config(load_terminology(), self.config.corpus)
        return self._corpus

    @property
    def encoder(self):
        if self._encoder is None:
            target = str(biencoder_dir(self.model_dir)) if self.model_dir is not None else self.name
            self._encoder = load_encoder_any(target)
        return self._encoder

    @property
    def index(self):
        if self._index is None:
            if self.model_dir is not None:
                from clinassay.retrieval.index import CodeIndex

                self._index = CodeIndex.load(self.model_dir / "index")
            elif self.name == "bm25":
                from clinassay.retrieval.bm25 import BM25CodeIndex

                self._index = BM25CodeIndex(self.corpus)
            else:
                from clinassay.retrieval.index import CodeIndex, corpus_embeddings

                with stage(self.progress, "encode corpus", "text") as advance:
                    vectors = corpus_embeddings(
                        self.encoder, self.corpus, cache_dir=self.config.cache_dir,
                        batch_size=self.config.encode_batch_size, engine=self.config.corpus.engine, progress=advance,
                    )
                self._index = CodeIndex.build(
                    self.corpus, vectors, kind=self.config.index,
                    hnsw_m=self.config.hnsw_m, ef_search=self.config.hnsw_ef_search,
                )
        return self._index

    @property
    def reranker(self):
        if self._reranker is None:
            if not self.has_reranker:
                raise ClinassayInputError(f"{self.name} has no reranker: --rerank needs a model trained with stage 2")
            from clinassay.retrieval.reranker import load_reranker

            self._reranker = load_reranker(self.model_dir / "reranker")
        return self._reranker

    @functools.cached_property
    def fusion_weight(self) -> float:
        """The reranker's share of the final score, as fitted on the dev split at training time."""
        from clinassay.retrieval.reranker import load_fusion_weight

        return load_fusion_weight(self.model_dir / "reranker") if self.model_dir is not None else 1.0

    # search ---------------------------------------------------------------------------------
    def stage1(self, mentions: list[str], *, k: int) -> list[list[tuple[str, float]]]:
        if self.name == "bm25" and self.model_dir is None:
            return self.index.search(mentions, k)
        index = self.index
        from clinassay.retrieval.index import limited_threads

        if len(mentions) <= SMALL_BATCH:
            with limited_threads(1):
                vectors = self.encoder.encode(list(mentions), kind="query", batch_size=self.config.encode_batch_size)
                return index.search(vectors, k)
        with stage(self.progress, "encode mentions", "text") as advance:
            vectors = encode_reporting(self.encoder, mentions, kind="query", batch_size=self.config.encode_batch_size,
                                       progress=advance)
        return index.search(vectors, k)

    def rerank(self, mentions: list[str], candidates: list[list[tuple[str, float]]], *, languages: list[str]) -> list[list[tuple[str, float]]]:
        from clinassay.retrieval.reranker import rerank_candidates

        # unlike one query's encoding, a shortlist of 20 (mention, code) pairs through a 12-layer encoder
        # is worth every core: p50 516 ms on one thread, 287 ms on two (idle 2-core machine)
        return rerank_candidates(self.reranker, mentions, candidates, corpus=self.corpus, languages=languages,
                                 fusion_weight=self.fusion_weight)

    def search(
        self,
        mentions: str | list[str],
        *,
        language: str | list[str] | None = None,
        k: int = 10,
        rerank: bool = False,
    ) -> list[list[Hit]]:
        """Top-k codes per mention; with `rerank`, stage 2 reorders stage 1's shortlist."""
        if isinstance(mentions, str):
            mentions = [mentions]
        languages = language if isinstance(language, list) else [language or "en"] * len(mentions)
        if rerank:
            shortlist = max(k, self.config.reranker.candidates_top_k)
            ranked = self.rerank(mentions, self.stage1(mentions, k=shortlist), languages=languages)
            ranked = [r[:k] for r in ranked]
        else:
            ranked = self.stage1(mentions, k=k)
        corpus = self.corpus
        return [
            [Hit(rank=i, code=code, title=corpus.title(code), score=round(score, 6)) for i, (code, score) in enumerate(row, start=1)]
            for row in ranked
        ]
