"""The lexical baseline: BM25 (bm25s) over the same label texts as the dense index, pooled per code
the same way, so the two are compared on one corpus. Accents and case are folded, so "infeccion"
matches "infección"."""

from __future__ import annotations

import re
import unicodedata

from clinassay.retrieval.corpus import CodeCorpus

_TOKEN = re.compile(r"\w\w+", re.UNICODE)


def fold_tokens(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _TOKEN.findall(plain)


class BM25CodeIndex:
    """`search(mentions, k)` -> top-k (code, score) per mention, like `CodeIndex.search`."""

    def __init__(self, corpus: CodeCorpus, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.corpus = corpus
        self.k1, self.b = k1, b
        self._bm25 = None

    def _model(self):
        if self._bm25 is None:
            import bm25s

            self._bm25 = bm25s.BM25(k1=self.k1, b=self.b)
            self._bm25.index([fold_tokens(t) or ["_"] for t in self.corpus.texts], show_progress=False)
        return self._bm25

    def search(self, mentions: list[str], k: int = 10) -> list[list[tuple[str, float]]]:
        model = self._model()
        n_texts = len(self.corpus.texts)
        fetch = min(n_texts, max(8 * k, 100))
        tokens = [fold_tokens(m) or ["_"] for m in mentions]
        ids, scores = model.retrieve(tokens, k=fetch, show_progress=False, n_threads=1)
        results = []
        for row in range(len(mentions)):
            best: dict[int, float] = {}
            for text_id, score in zip(ids[row].tolist(), scores[row].tolist()):
                if score <= 0:
                    break
                for code in self.corpus.text_codes[text_id]:
                    best.setdefault(code, float(score))
            ranked = sorted(best.items(), key=lambda item: -item[1])[:k]
            results.append([(self.corpus.codes[i], s) for i, s in ranked])
        return results

