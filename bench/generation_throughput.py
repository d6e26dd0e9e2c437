"""Generation throughput against a local OpenAI-compatible server with a fixed simulated latency.

Claim: generation is I/O-bound, and the runner (asyncio workers -> LiteLLM Router -> JSONL store,
fsync'ed) keeps `concurrency` requests in flight, so throughput stays close to the ideal
concurrency / latency. Printed as that ratio for 1..64 concurrent requests; target >= 0.8.
The default latency, 1 s, is a short structured reply from a hosted LLM (a few mentions, ~50 output
tokens); `--latency 0.2` is a stress level where the client's CPU, not the network, is the limit.
`ratio` is over the whole level; `steady` leaves out the start (first fifth of the requests, and with
--processes the workers' start-up). The client's CPU per request (LiteLLM's, mostly) caps one process
at 1000 / (CPU ms per request) requests/s: past that, more processes (on more cores) are the way.

    python bench/generation_throughput.py [--latency 1.0] [--rounds 10] [--max-concurrency 64] [--processes 1]

The stub server runs in its own process (tests/generation_stub.py) so that it does not share the
client's event loop or GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from clinassay.generation.budget import Budget  # noqa: E402
from clinassay.generation.config import GenerationConfig, ModelConfig  # noqa: E402
from clinassay.generation.llm import LLMClient, quiet_litellm  # noqa: E402
from clinassay.generation.plan import Request  # noqa: E402
from clinassay.generation.prompts import Prompt  # noqa: E402
from clinassay.generation.progress import Progress  # noqa: E402
from clinassay.generation.runner import RunSummary, run_requests  # noqa: E402
from clinassay.generation.shards import run_sharded  # noqa: E402
from clinassay.generation.store import PairStore  # noqa: E402


def _requests(n: int, tag: str) -> list[Request]:
    out = []
    for i in range(n):
        prompt = Prompt(prompt_id="bench/v1", text=f"Target code: B{i:05d}.{tag}\nWrite 3 different mentions.")
        out.append(Request(model="stub", litellm_model="openai/stub-ok-bench", kind="litellm", task="positive",
                           code=f"B{i:05d}", language="en", sample_index=0, seed=0, temperature=0.0, n=3,
                           prompt=prompt))
    return out


class _Clock(Progress):
    """A silent progress bar that notes when each request finished (for the steady-state rate)."""

    def __init__(self, total: int) -> None:
        super().__init__(total, enabled=False)
        self.times: list[float] = []

    def update(self, **kwargs) -> None:
        super().update(**kwargs)
        self.times.append(time.monotonic())


def run_level(api_base: str, concurrency: int, n_requests: int, workdir: Path, tag: str,
              processes: int = 1) -> tuple[float, float, float | None, RunSummary]:
    """(seconds for the whole level, steady-state requests/s, client CPU ms per request or None, summary)."""
    model = ModelConfig(name="stub", model="openai/stub-ok-bench", api_base=api_base, max_concurrency=concurrency,
                        num_retries=0, timeout_s=30)
    config = GenerationConfig(models=[model], progress=False, processes=processes)
    store = PairStore(workdir / f"pairs-{tag}.jsonl")
    summary = RunSummary()
    requests = _requests(n_requests, tag)
    clock = _Clock(len(requests))
    start = time.monotonic()
    cpu_start = _cpu_seconds()
    if processes > 1:
        # worker processes start and import LiteLLM inside this span: the steady-state rate leaves that out
        run_sharded(requests, config=config, store=store, budget=Budget(), summary=summary, bar=clock,
                    api_bases={}, processes=processes)
        cpu_ms = None
    else:
        asyncio.run(run_requests(requests, config=config, store=store, client=LLMClient([model]), budget=Budget(),
                                 summary=summary, progress=False, bar=clock))
        cpu_ms = 1000 * (_cpu_seconds() - cpu_start) / max(1, n_requests)
    seconds = time.monotonic() - start
    # steady state: from the moment a fifth of the requests (at least one round) are done to the last one
    k = max(concurrency, n_requests // 5)
    times = sorted(clock.times)
    steady = (len(times) - k) / (times[-1] - times[k - 1]) if len(times) > k and times[-1] > times[k - 1] else 0.0
    return seconds, steady, cpu_ms, summary


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes (the client side's cost)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0, help="simulated server latency, seconds")
    parser.add_argument("--rounds", type=int, default=10, help="requests per level = rounds x concurrency")
    parser.add_argument("--max-concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=1, help="worker processes (GenerationConfig.processes)")
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "generation_stub.py"), "--latency",
                               str(args.latency)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        api_base = f"http://127.0.0.1:{port}/v1"
        levels = [c for c in (1, 2, 4, 8, 16, 32, 64, 128, 256) if c <= args.max_concurrency]
        with tempfile.TemporaryDirectory() as tmp, quiet_litellm():
            run_level(api_base, 4, 8, Path(tmp), "warmup")  # imports, client pools
            print(f"latency {args.latency * 1000:.0f} ms, {args.rounds} rounds per level, "
                  f"{args.processes} process(es), {os.cpu_count()} CPUs")
            print(f"{'concurrency':>11} {'requests':>8} {'seconds':>8} {'req/s':>8} {'ideal':>8} {'ratio':>6} "
                  f"{'steady':>7} {'client CPU ms/req':>17}")
            for c in levels:
                n = c * args.rounds
                seconds, steady, cpu_ms, summary = run_level(api_base, c, n, Path(tmp), f"c{c}", args.processes)
                assert summary.failed == 0 and summary.pairs == 3 * n, summary
                rate = n / seconds
                ideal = c / args.latency
                cpu = "-" if cpu_ms is None else f"{cpu_ms:.2f}"
                print(f"{c:>11} {n:>8} {seconds:>8.2f} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>6.2f} "
                      f"{steady / ideal:>7.2f} {cpu:>17}")
            print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; one process can do at most "
                  "1000 / (client CPU ms/req) requests per second, whatever the concurrency")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
