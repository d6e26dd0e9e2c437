"""Fitting the audit's query adapter (audit/query_adapter.py): linear maps on mention vectors, trained so
that a mention's best-scoring ICD-10-CM category is its own (and, for the member map, its own code
among the category's members).

The loss is a softmax over the candidates the audit compares (every category at once, or the members of
the gold category), each scored by its best text as the fit check scores it, so the adapter learns
exactly the ranking the audit reads. The code vectors stay fixed (the encoder's cached passages); the
matrix starts at the identity and is held near it (`l2`), so vectors of text unlike the training
mentions move little. Fitting on 11k vectors takes about 40 s on 2 cores: the encoder's forward passes
are done once, before, by the caller.
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


def train_query_adapter(queries: np.ndarray, targets: Sequence[int],
                        candidates: Sequence[tuple[np.ndarray, Sequence[int]]], group_of: Sequence[int] | None = None,
                        *, epochs: int = 30, lr: float = 1e-3, l2: float = 1e-3, temperature: float = 0.02,
                        batch_size: int = 256, seed: int = 0) -> np.ndarray:
    """The (dim, dim) matrix under which each of `queries` (n, dim, L2-normalised) scores its target best.

    `candidates` are sets of owners, each as (text vectors, start of each owner's texts): an owner scores
    its best text's cosine, as the fit check scores categories and members. Query i is scored against the
    set `group_of[i]` (all against set 0 when None: the categories) and `targets[i]` is its owner there."""
    import torch

    torch.manual_seed(seed)
    sets = []
    for vectors, starts in candidates:
        owner = np.zeros(len(vectors), dtype=np.int64)
        for k, start in enumerate(starts):
            owner[start:] = k
        sets.append((torch.as_tensor(np.asarray(vectors, dtype=np.float32)), torch.as_tensor(owner), len(starts)))
    q_all = torch.as_tensor(np.asarray(queries, dtype=np.float32))
    y_all = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    g_all = np.zeros(len(y_all), dtype=np.int64) if group_of is None else np.asarray(group_of, dtype=np.int64)
    identity = torch.eye(q_all.shape[1])
    matrix = torch.nn.Parameter(identity.clone())
    optimiser = torch.optim.Adam([matrix], lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(y_all)).numpy()
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            adapted = torch.nn.functional.normalize(q_all[batch] @ matrix, dim=1)
            loss = l2 * ((matrix - identity) ** 2).sum()
            for group in np.unique(g_all[batch]):
                rows = np.flatnonzero(g_all[batch] == group)
                texts, owner, n_owners = sets[group]
                sims = adapted[rows] @ texts.T
                scores = torch.full((len(rows), n_owners), -1e4).scatter_reduce(
                    1, owner.expand(len(rows), -1), sims, reduce="amax", include_self=True)
                loss = loss + torch.nn.functional.cross_entropy(
                    scores / temperature, y_all[batch][rows], reduction="sum") / len(batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return matrix.detach().numpy().copy()
