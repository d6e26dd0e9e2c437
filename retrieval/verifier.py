"""A learned verifier for the audit's fit check: a small cross-encoder that reads (mention, code text)
together and says whether the mention is that code.

Trained on the terminology only, never on CodiEsp or any evaluation data: positives are a code's labels
(es/fr/pt/it/ca), English inclusion terms and title, and the clinician-style short forms of those labels
(generation/short_forms.py), each against the code's text in another or the same language; negatives are
the same mention against a sibling in the category, a code of another category of the same chapter, and
the codes whose texts are lexically closest to the mention (audit/lexical.py's index). The backbone is
me5-small cut to its first `layers` layers (the audit has to stay above 100 pairs/s on 2 CPU cores), its
word embeddings frozen; `CrossEncoderTrainer` with binary cross-entropy.

The trained model lives in the user cache (`~/.cache/clinassay/verifiers/NAME`), built by
`clinassay train-verifier`; no weights are committed. The audit never imports this module: the CLI builds
a `CrossEncoderVerifier` and hands it to the `Auditor`, which only calls `verifier.score(pairs)`.

Importing this module imports neither torch nor sentence-transformers: they load on first use.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike

if TYPE_CHECKING:
    import numpy as np

VERIFIER_NAME = "me5-small-verifier-v1"
SPEC_FILE = "clinassay_verifier.json"
LABEL_LANGUAGES = ("es", "ca", "pt", "fr", "it")


class VerifierMissingError(ClinassayInputError):
    """The configured verifier has not been trained into the cache yet."""


@dataclass(frozen=True)
class VerifierSpec:
    """What a trained verifier is: backbone, depth, training budget and data; stored beside the weights."""

    name: str = VERIFIER_NAME
    backbone: str = "me5-small"
    layers: int = 2  # 4 layers ran >14 s a step on the busy 2-core machine; 2 keep the audit fast
    max_length: int = 48
    groups: int = 1700  # training mentions; each gives 1 positive + `negatives` negatives (~1 epoch)
    negatives: int = 3
    max_steps: int = 420
    batch_size: int = 16
    learning_rate: float = 1e-3  # 8e-5 and 2e-4 stayed at the label prior; 1e-3 fits a 32-pair set in 15 steps
    seed: int = 0
    max_minutes: float = 30.0  # training stops here whatever the step (the CPU budget), and saves what it has


def verifier_dir(name: str = VERIFIER_NAME, *, cache_dir: str | Path | None = None) -> Path:
    from clinassay.retrieval.models import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "verifiers" / name


# ---- training data ---------------------------------------------------------------------------------

def mention_forms(term: TerminologyLike, code: str) -> list[tuple[str, str]]:
    """(language, text) a clinician or an LLM could write for this code, from the terminology alone:
    title, inclusion terms, exact labels, and the short forms of title and labels."""
    from clinassay.generation.short_forms import short_form

    entry = term.find(code)
    forms: list[tuple[str, str]] = [("en", entry.title)]
    forms += [("en", t) for t in entry.inclusion_terms[:4]]
    short = short_form(entry.title, "en")
    if short:
        forms.append(("en", short))
    for language in LABEL_LANGUAGES:
        label = term.label(code, language)
        if label is None or not label.text or label.precision != "exact":
            continue
        forms.append((language, label.text))
        short = short_form(label.text, language)
        if short:
            forms.append((language, short))
    return list(dict.fromkeys(forms))


def _siblings(term: TerminologyLike, code: str) -> list[str]:
    try:
        return [c for c in term.siblings(code) if c != code]
    except Exception:  # noqa: BLE001 - a code without a parent has no siblings
        return []


class _Negatives:
    """Negatives for a mention of a node: the lexically closest node, a sibling, a node from another
    chapter (easy, but the miscodes that matter most), a node of another category in the same chapter; never the node's ancestor or descendant, never a node the mention is
    an official term of."""

    def __init__(self, term: TerminologyLike, rng: random.Random) -> None:
        from clinassay.audit.fit import OfficialTerms, member_node
        from clinassay.audit.lexical import LexicalIndex

        self.term, self.rng = term, rng
        self.lexical = LexicalIndex.for_terminology(term)
        self.official = OfficialTerms(term).of
        self.member_node = member_node
        self.nodes_by_chapter: dict[str, list[str]] = {}
        self.categories_by_chapter: dict[str, list[str]] = {}
        for code in term.billable_codes():
            chapter = term.find(code).chapter
            self.nodes_by_chapter.setdefault(chapter, []).append(member_node(term, code))
        for chapter, nodes in self.nodes_by_chapter.items():
            self.nodes_by_chapter[chapter] = list(dict.fromkeys(nodes))
            self.categories_by_chapter[chapter] = list(dict.fromkeys(n[:3] for n in nodes))

    def _usable(self, node: str, other: str, norm: str) -> bool:
        return (other != node and not other.startswith(node) and not node.startswith(other)
                and self.term.find(other) is not None and norm not in self.official(other))

    def for_mention(self, node: str, mention: str, *, level: str, count: int) -> list[str]:
        from clinassay.audit.text import normalize_text

        norm = normalize_text(mention)
        picked: list[str] = []
        sims = (self.lexical.vectorizer.transform([norm]) @ self.lexical.matrix).toarray()[0]
        for k in sims.argsort()[::-1][:30]:
            owner = str(self.lexical.owners[k])
            other = owner[:3] if level == "category" else self.member_node(self.term, owner)
            if sims[k] > 0 and other not in picked and self._usable(node, other, norm):
                picked.append(other)
            if len(picked) >= max(1, count - 3):
                break
        if level == "code":
            siblings = [c for c in dict.fromkeys(self.member_node(self.term, s) for s in _siblings(self.term, node))
                        if c not in picked and self._usable(node, c, norm)]
            if siblings:
                picked.append(self.rng.choice(siblings))
        by_chapter = self.categories_by_chapter if level == "category" else self.nodes_by_chapter
        chapter = self.term.find(node).chapter
        # one easy negative from another chapter: gross miscodes are what the audit must never miss
        others = [c for c in by_chapter if c != chapter]
        if others and len(picked) < count:
            other = self.rng.choice(by_chapter[self.rng.choice(others)])
            if self._usable(node, other, norm):
                picked.append(other)
        pool = by_chapter.get(chapter, [])
        for _ in range(20):
            if len(picked) >= count or not pool:
                break
            other = self.rng.choice(pool)
            if other[:3] != node[:3] and other not in picked and self._usable(node, other, norm):
                picked.append(other)
        return picked[:count]


def training_rows(term: TerminologyLike, spec: VerifierSpec) -> list[dict]:
    """Rows {mention, text, label} from the terminology. Per group: a category (so that the injury
    chapter's thousands of 7th-character codes do not crowd out the rest), one of its code nodes,
    one mention form of it, and either the code's text (70 %) or its category's text (30 %: a mention
    fits the category it falls under) as the positive (chapters drawn by the square root of their
    size, then a category uniformly), in the mention's language half of the time, never
    a verbatim copy; `spec.negatives` hard negatives at the same level, in the same text language."""
    from clinassay.audit.fit import member_node, verifier_text

    rng = random.Random(spec.seed)
    negatives = _Negatives(term, rng)
    by_category: dict[str, list[str]] = {}
    for code in term.billable_codes():
        by_category.setdefault(code[:3], []).append(member_node(term, code))
    chapters: dict[str, list[str]] = {}
    for category in sorted(by_category):
        chapters.setdefault(term.find(category).chapter, []).append(category)
    names = sorted(chapters)
    weights = [len(chapters[c]) ** 0.5 for c in names]  # small chapters seen, the big ones not dominant
    languages = ("en", *LABEL_LANGUAGES)
    rows: list[dict] = []
    while len(rows) < spec.groups * (1 + spec.negatives):
        category = rng.choice(chapters[rng.choices(names, weights)[0]])
        code = rng.choice(sorted(set(by_category[category])))
        language, mention = rng.choice(mention_forms(term, code))
        level = "category" if rng.random() < 0.3 and code != category else "code"
        node = category if level == "category" else code
        text_language = language if rng.random() < 0.5 else rng.choice(languages)
        positive = verifier_text(term, node, text_language)
        if positive.casefold() == mention.casefold() or mention.casefold() in positive.casefold().split(" (")[0:1]:
            text_language = "en" if language != "en" else rng.choice(LABEL_LANGUAGES)
            positive = verifier_text(term, node, text_language)
            if positive.casefold() == mention.casefold():
                continue
        rows.append({"mention": mention, "text": positive, "label": 1.0})
        for other in negatives.for_mention(node, mention, level=level, count=spec.negatives):
            rows.append({"mention": mention, "text": verifier_text(term, other, text_language), "label": 0.0})
    return rows


# ---- training --------------------------------------------------------------------------------------

def train_verifier(term: TerminologyLike, *, spec: VerifierSpec | None = None, out_dir: Path | None = None,
                   cache_dir: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Train the verifier into `out_dir` (default: the user cache) and return what happened."""
    import numpy as np
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import PrinterCallback

    from clinassay.retrieval.models import model_identity, resolve_model_path
    from clinassay.retrieval.reranker import transformer_dir
    from clinassay.retrieval.biencoder import ProgressCallback, set_threads, training_placement, placement_arguments

    spec = spec or VerifierSpec()
    out_dir = Path(out_dir) if out_dir is not None else verifier_dir(spec.name, cache_dir=cache_dir)
    set_threads()
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed)
    started = time.perf_counter()
    rows = training_rows(term, spec)
    log(f"verifier: {len(rows)} training rows ({sum(r['label'] for r in rows):.0f} positive) from the terminology "
        f"in {time.perf_counter() - started:.0f} s")
    placement = training_placement()
    backbone = transformer_dir(resolve_model_path(spec.backbone, cache_dir=cache_dir))
    model = CrossEncoder(backbone, num_labels=1, max_length=spec.max_length, device=placement["device"],
                         config_kwargs={"num_hidden_layers": spec.layers})
    for name, parameter in model.named_parameters():
        if "word_embeddings" in name:
            parameter.requires_grad = False  # 250k x 384: most of a CPU step's optimizer work
    for name, module in model.named_modules():
        # the checkpoint's pooler was trained on the 12th layer's [CLS]; on a cut model's it saturates its
        # tanh and nothing learns (loss stuck at the label prior): start it afresh, as the head is
        if name.endswith("pooler.dense") and isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.02)
            torch.nn.init.zeros_(module.bias)
    checkpoints = out_dir.parent / f".{out_dir.name}-checkpoints"
    args = CrossEncoderTrainingArguments(
        output_dir=str(checkpoints), max_steps=spec.max_steps, per_device_train_batch_size=spec.batch_size,
        learning_rate=spec.learning_rate, warmup_steps=0.1, seed=spec.seed, data_seed=spec.seed,
        save_strategy="no", logging_steps=10, disable_tqdm=True, **placement_arguments(placement))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows).shuffle(seed=spec.seed),
                                  loss=BinaryCrossEntropyLoss(model), callbacks=[ProgressCallback(log, "verifier")])
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(_WallClock(spec.max_minutes * 60.0))
    result = trainer.train()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    import shutil

    shutil.rmtree(checkpoints, ignore_errors=True)
    info = {"spec": spec.__dict__, "backbone_identity": model_identity(spec.backbone, cache_dir=cache_dir),
            "rows": len(rows), "global_step": result.global_step, "train_loss": round(float(result.training_loss), 4),
            "seconds": round(time.perf_counter() - started, 1), "data": "terminology only (no CodiEsp)"}
    (out_dir / SPEC_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _WallClock(seconds: float):
    """A callback that stops training after `seconds` of wall time (the model trained so far is kept)."""
    from transformers import TrainerCallback

    class WallClock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() - self.started > seconds:
                control.should_training_stop = True
            return control

    return WallClock()


# ---- scoring ---------------------------------------------------------------------------------------

class CrossEncoderVerifier:
    """The trained verifier, loaded on first use. `score(pairs)` gives one logit per (mention, code text):
    above 0, the mention reads as that code."""

    def __init__(self, name: str = VERIFIER_NAME, *, path: str | Path | None = None,
                 cache_dir: str | Path | None = None, batch_size: int = 64) -> None:
        self.name = name
        self.path = Path(path) if path is not None else verifier_dir(name, cache_dir=cache_dir)
        self.batch_size = batch_size
        self._model: Any = None
        self.calls = 0
        self.seconds = 0.0

    def __repr__(self) -> str:
        return f"CrossEncoderVerifier({self.name!r}, {'loaded' if self._model is not None else 'not loaded'})"

    @property
    def trained(self) -> bool:
        return (self.path / SPEC_FILE).is_file()

    def _load(self) -> Any:
        if self._model is None:
            if not self.trained:
                raise VerifierMissingError(
                    f"the fit verifier {self.name!r} is not trained yet (no {self.path / SPEC_FILE}): run "
                    "`clinassay train-verifier` once (about 30 minutes on 2 CPU cores), or set [audit.fit] verifier = false")
            import torch
            from sentence_transformers.cross_encoder import CrossEncoder

            from clinassay.retrieval.biencoder import set_threads

            set_threads()
            self._model = CrossEncoder(str(self.path), device="cpu", activation_fn=torch.nn.Identity())
        return self._model

    def score(self, pairs: Sequence[tuple[str, str]]) -> "np.ndarray":
        import numpy as np

        if not pairs:
            return np.zeros(0, dtype=np.float32)
        model = self._load()
        started = time.perf_counter()
        out = model.predict(list(pairs), batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        self.seconds += time.perf_counter() - started
        self.calls += len(pairs)
        return np.asarray(out, dtype=np.float32).reshape(-1)


def load_verifier(name: str = VERIFIER_NAME, *, cache_dir: str | Path | None = None) -> CrossEncoderVerifier:
    """The named verifier from the cache; fails with a plain message (exit 2) when it was never trained."""
    verifier = CrossEncoderVerifier(name, cache_dir=cache_dir)
    if not verifier.trained:
        verifier._load()  # raises VerifierMissingError with what to run
    return verifier
