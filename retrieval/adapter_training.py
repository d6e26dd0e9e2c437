"""Fitting the audit's query adapter (audit/query_adapter.py): one linear map on mention vectors, trained
so that a mention's best-scoring ICD-10-CM category is its own.

The loss is a softmax over every category at once (1,918 of them), each category scored by its best text
as the fit check scores it, so the adapter learns exactly the ranking the audit reads. The category
vectors stay fixed (the encoder's cached passages); the matrix starts at the identity and is held near it
(`l2`), so vectors of text unlike the training mentions move little. Fitting on 11k vectors takes about
30 s on 2 cores: the encoder's forward passes are done once, before, by the caller.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import numpy as np

from clinassay.terminology.protocol import TerminologyLike


def terminology_queries(term: TerminologyLike, codes: Iterable[str], *, per_code: int = 2,
                        seed: int = 0) -> list[tuple[str, str, str]]:
    """(text, code, language) a clinician or an LLM could write for these codes, from the terminology
    alone (retrieval/verifier.py's `mention_forms`: titles, inclusion terms, exact labels and their short
    forms), up to `per_code` per code, seeded."""
    from clinassay.retrieval.verifier import mention_forms

    rng = random.Random(seed)
    rows: list[tuple[str, str, str]] = []
    for code in codes:
        forms = mention_forms(term, code)
        for language, text in rng.sample(forms, min(per_code, len(forms))):
            rows.append((text, code, language))
    return rows


def train_query_adapter(queries: np.ndarray, targets: Sequence[int], category_vectors: np.ndarray,
                        starts: Sequence[int], *, epochs: int = 30, lr: float = 1e-3, l2: float = 1e-3,
                        temperature: float = 0.05, batch_size: int = 256, seed: int = 0) -> np.ndarray:
    """The (dim, dim) matrix: `queries` (n, dim, L2-normalised) should score category `targets[i]` best,
    where a category's score is its best text's cosine (`category_vectors` rows grouped contiguously,
    group k starting at `starts[k]`)."""
    import torch

    torch.manual_seed(seed)
    texts = torch.as_tensor(np.asarray(category_vectors, dtype=np.float32))
    owner = np.zeros(len(texts), dtype=np.int64)
    for k, start in enumerate(starts):
        owner[start:] = k
    owner_t = torch.as_tensor(owner)
    n_categories = len(starts)
    q_all = torch.as_tensor(np.asarray(queries, dtype=np.float32))
    y_all = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    dim = q_all.shape[1]
    identity = torch.eye(dim)
    matrix = torch.nn.Parameter(identity.clone())
    optimiser = torch.optim.Adam([matrix], lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(y_all))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            adapted = torch.nn.functional.normalize(q_all[batch] @ matrix, dim=1)
            sims = adapted @ texts.T
            scores = torch.full((len(batch), n_categories), -1e4).scatter_reduce(
                1, owner_t.expand(len(batch), -1), sims, reduce="amax", include_self=True)
            loss = (torch.nn.functional.cross_entropy(scores / temperature, y_all[batch])
                    + l2 * ((matrix - identity) ** 2).sum())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return matrix.detach().numpy().copy()
