"""Claim: the terminology parses once, then loads from its hash-keyed cache much faster.

Prints the cold load (parse ICD-10-CM XML + WHO .po files, write the cache), the warm load in a fresh
process (hash the sources, unpickle), the warm `clinassay terminology show N39.0` command, and ratios.
Uses a temporary cache directory so the user's cache is untouched.

    python bench/terminology_load.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

LOAD = "import time; t = time.perf_counter(); from terminology import load_terminology; load_terminology(); print(time.perf_counter() - t)"


def _run(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _wall(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CLINASSAY_CACHE_DIR": cache}
        cold = _run(LOAD, env)
        warm = statistics.median(_run(LOAD, env) for _ in range(repeat))
        show = [sys.executable, "-m", "clinassay", "terminology", "show", "N39.0", "--language", "es"]
        baseline = [sys.executable, "-m", "clinassay", "--version"]
        show_s = statistics.median(_wall(show, env) for _ in range(repeat))
        base_s = statistics.median(_wall(baseline, env) for _ in range(repeat))
    print(f"cold load (parse + write cache): {cold:.3f} s")
    print(f"warm load (fresh process, median of {repeat}): {warm:.3f} s")
    print(f"cold/warm ratio: {cold / warm:.1f}x")
    print(f"warm `clinassay terminology show N39.0 --language es`: {show_s:.3f} s wall "
          f"({show_s - base_s:.3f} s beyond `clinassay --version` at {base_s:.3f} s)")


if __name__ == "__main__":
    main()
