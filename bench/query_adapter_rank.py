"""What the fit check's query adapter (audit/query_adapter.py) does to the ranking the audit reads: the
rank of a mention's own category among all 1,918 categories, and of its own code among its category's
members, with the raw me5-small vectors and with the adapter, on data the adapter never saw:

- CodiEsp dev diagnoses (distinct mention, code), the adapter being fitted on train;
- terminology texts (titles, inclusion terms, exact labels and their short forms) of codes outside the
  `--adapter-codes` the adapter was fitted on, per language.

    python bench/query_adapter_rank.py                 # after python bench/fit_operating_points.py

It also times what the adapter costs the audit: `CorpusFit.score` over the same 600 dev rows with and
without it, alternating, median of 5 (a ratio, as the machine's load moves absolute times).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from clinassay.audit.fit import CorpusFit, member_node  # noqa: E402
from clinassay.audit.fit_model import query_adapter_for  # noqa: E402

CODIESP_DEV = ROOT.parent / "shared" / "data" / "codiesp" / "dev"


def ranks(fit: CorpusFit, rows: list[tuple[str, str, str]], vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Category rank (categories scoring above the own one) and member rank (members above the own
    node; only rows whose category has members), raw and adapted."""
    cats = fit.categories
    out: dict[str, list] = {"category raw": [], "category adapted": [], "member raw": [], "member adapted": []}
    adapter = fit.adapter
    for side, transform in (("raw", lambda v, s: v), ("adapted", lambda v, s: adapter.apply(v, s))):
        scores = cats.scores(transform(vectors, "category"))
        for row, (_, code, _) in zip(scores, rows):
            out[f"category {side}"].append(int((row > row[cats.position[code[:3]]]).sum()))
        member_vectors = transform(vectors, "member")
        for vec, (_, code, language) in zip(member_vectors, rows):
            entry = fit.terminology.find(code)
            members = fit.members_of(code[:3], language) if entry is not None and entry.billable else None
            node = member_node(fit.terminology, code)
            if members is not None and node in members.position:
                row = members.scores(vec[None, :])[0]
                out[f"member {side}"].append(int((row > row[members.position[node]]).sum()))
    return {k: np.asarray(v) for k, v in out.items()}


def line(name: str, r: dict[str, np.ndarray]) -> str:
    def mrr(x):
        return float(np.mean(1.0 / (x + 1))) if len(x) else float("nan")

    def top1(x):
        return float(np.mean(x == 0)) if len(x) else float("nan")

    return (f"{name:24s} n {len(r['category raw']):5d}  category MRR {mrr(r['category raw']):.3f} -> "
            f"{mrr(r['category adapted']):.3f}, median rank {np.median(r['category raw']):.0f} -> "
            f"{np.median(r['category adapted']):.0f}  |  member first {top1(r['member raw']):.3f} -> "
            f"{top1(r['member adapted']):.3f} (n {len(r['member raw'])})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="me5-small")
    parser.add_argument("--adapter-codes", type=int, default=5000, help="as given to fit_operating_points.py")
    parser.add_argument("--seed", type=int, default=0, help="as given to fit_operating_points.py")
    parser.add_argument("--per-language", type=int, default=500)
    args = parser.parse_args()
    from clinassay.retrieval.adapter_training import terminology_queries
    from clinassay.retrieval.encoder_cache import DiskCachedEncoder
    from clinassay.retrieval.evalset import codiesp_rows
    from clinassay.retrieval.models import load_encoder
    from clinassay.terminology import load_terminology

    term = load_terminology()
    adapter = query_adapter_for(args.encoder)
    if adapter is None:
        print(f"no query adapter fitted for {args.encoder}: run python bench/fit_operating_points.py")
        return 2
    encoder = DiskCachedEncoder(load_encoder(args.encoder), queries=True)
    fit = CorpusFit(term, encoder, languages=["es", "ca", "pt", "fr", "it", "en"], adapter=adapter)
    cats = fit.categories
    rows, _ = codiesp_rows(CODIESP_DEV, term)
    dev = list(dict.fromkeys((i.mention, i.code, i.language) for _, i in rows if i.code[:3] in cats.position))
    print(f"adapter {adapter.digest}; {args.encoder}; ranks among {len(cats.owners)} categories")
    print(line("CodiEsp dev (distinct)", ranks(fit, dev, encoder.encode([m for m, _, _ in dev], kind="query"))))
    # the codes fit_operating_points.py sampled for the adapter, in the same order: the rest never trained it
    codes = sorted({c for c in term.billable_codes() if c[:3] in cats.position})
    random.Random(args.seed).shuffle(codes)
    unseen = codes[args.adapter_codes:]
    texts = terminology_queries(term, unseen[: 8 * args.per_language], per_code=3, seed=args.seed + 1)
    for language in ("es", "pt", "fr", "it", "en"):
        picked = [(t, c, lang) for t, c, lang in texts if lang == language][: args.per_language]
        if picked:
            vectors = encoder.encode([t for t, _, _ in picked], kind="query")
            print(line(f"unseen codes' texts, {language}", ranks(fit, picked, vectors)))
    cost(term, encoder, adapter, dev[:600])
    return 0


def cost(term, encoder, adapter, rows: list[tuple[str, str, str]]) -> None:
    import time

    from clinassay.audit.text import normalize_text

    vectors = encoder.encode([m for m, _, _ in rows], kind="query")
    scored = [(v, normalize_text(m), c, lang) for v, (m, c, lang) in zip(vectors, rows)]
    fits = {"raw": CorpusFit(term, encoder, languages=["es", "en"]),
            "adapted": CorpusFit(term, encoder, languages=["es", "en"], adapter=adapter)}
    for fit in fits.values():
        fit.score(scored)  # warm: category and member vectors, the lexical index
    times: dict[str, list[float]] = {name: [] for name in fits}
    for _ in range(5):
        for name, fit in fits.items():
            started = time.perf_counter()
            fit.score(scored)
            times[name].append(time.perf_counter() - started)
    raw, adapted = (float(np.median(times[n])) for n in ("raw", "adapted"))
    print(f"fit.score over {len(rows)} rows, median of 5 alternating runs: raw {raw:.3f} s, adapted {adapted:.3f} s; "
          f"ratio {adapted / raw:.2f} (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    sys.exit(main())
