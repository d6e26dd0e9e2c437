"""The `[audit]` section of the configuration file: every check's thresholds and severity, and the gate.

A `fail` finding rejects the pair; a `warn` finding keeps it but marks and counts it. Leakage has no
severity: a leak is always a rejection.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinassay.audit.fit_model import OperatingPoint
from clinassay.audit.planting import FaultKind
from clinassay.generation.config import LiteLLMModel
from clinassay.terminology.languages import LANGUAGES, Language

Severity = Literal["warn", "fail"]
AuditLanguage = Language


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValidityConfig(_Section):
    require_billable: bool = Field(True, description="reject codes that are only headers (not billable)")
    billable_severity: Severity = Field(
        "warn", description="a header code is less specific, not wrong: clinicians' gold codes use headers ~7% of the time")
    min_chars: int = Field(2, ge=1)
    max_chars: int = Field(300, ge=10)
    markup: bool = Field(True, description="reject markup or code as a mention (HTML tags, URLs, script, templates)")
    nonsense: bool = Field(True, description="reject text that is not clinical language in any configured language")
    nonsense_max_known: float = Field(
        0.5, ge=0.0, le=1.0,
        description="a mention of 2+ words is nonsense when less than this share of its words are words of the "
                    "terminology's labels in some language ('lorem ipsum dolor sit amet': 2 of 5) ...")
    nonsense_max_confidence: float = Field(
        0.4, ge=0.0, le=1.0,
        description="... and the language detector gives no configured language this much confidence (real "
                    "words the labels lack, 'fumador habitual de marihuana', score 0.5 or more)")
    severity: Severity = "fail"


class ConsistencyConfig(_Section):
    max_candidates: int = Field(10, ge=1, le=500, description="sibling + nearby codes whose distinguishing terms (a number, a 'with X') the sibling-terms rule compares")
    negation: bool = True
    negation_severity: Severity = "fail"
    laterality: bool = True
    laterality_severity: Severity = "fail"
    sex: bool = True
    sex_severity: Severity = "fail"
    excludes1: bool = True
    excludes1_min_similarity: float = Field(0.92, ge=0.5, le=1.0, description="fuzzy match ratio, 0..1")
    excludes1_severity: Severity = "fail"
    sibling_terms: bool = Field(True, description="a number ('type 1', 'stage 3') or a 'with X' that only a sibling's title has")
    sibling_terms_severity: Severity = "fail"
    title_copy: bool = True
    title_copy_severity: Severity = "warn"


class FitConfig(_Section):
    """The fit of a mention against the whole classification (audit/fit.py): lexical always, dense with
    an encoder that has fitted models in audit/fit_model.json (me5-small)."""

    enabled: bool = True
    operating_point: OperatingPoint = Field(
        "balanced",
        description="how many correct clinician mentions the fit check may reject, as fitted on CodiEsp train: "
                    "lenient ~2%, balanced ~4% (about 5% with the other checks), strict ~10%, review ~15% (more wrong "
                    "codes caught the stricter it is; review is meant for warn_from)")
    other_chapter_severity: Severity = "fail"
    same_chapter_severity: Severity = "fail"
    sibling_severity: Severity = "fail"
    less_specific_severity: Severity = Field(
        "warn", description="the mention names a parent of the code (a WHO subcategory label for an ICD-10-CM code): "
                            "less specific, not wrong")
    warn_from: OperatingPoint | None = Field(
        "review",
        description="pairs this stricter operating point would reject and the configured one passes are warned "
                    "`doubtful_fit`, naming the code that fits better, so a likely wrong pair never passes unseen "
                    "(review: ~15% of correct clinician mentions flagged, and on CodiEsp dev 99.7% of codes from "
                    "another chapter, 99% from the same chapter; none: no such warning)")
    unverified: bool = Field(True, description="warn when no code text resembles the mention, so it cannot pass unseen")
    unverified_below: float = Field(
        0.15, ge=0.0, le=1.0,
        description="best character n-gram similarity to any code text under which a mention is unverifiable")
    top_categories: int = Field(5, ge=1, le=50, description="best categories named in a finding")
    max_members: int = Field(400, ge=2, description="categories with more member codes skip the sibling comparison")
    verifier: bool = Field(
        False, description="also ask the learned verifier (a small cross-encoder trained on the terminology by "
                           "`clinassay train-verifier`, kept in the user cache) about the pairs the fit models find "
                           "suspicious; used only with an encoder that has a fitted verifier variant (me5-small)")
    verifier_name: str = Field("me5-small-verifier-v1", min_length=1,
                               description="the trained verifier's folder under ~/.cache/clinassay/verifiers")


JUDGE_DEFAULTS = {"temperature": 0.0, "max_tokens": 16, "structured_output": False, "num_retries": 2}
"""What a jury judge is asked with unless its table says otherwise: one word, deterministic, no JSON schema."""


class JuryConfig(_Section):
    """An optional jury of LLMs judging each pair; off by default (it costs). Judges are LiteLLM model
    strings or `[[audit.jury.models]]` tables shaped like `[[generation.models]]` (api_base, api_key_env,
    litellm_params, rpm, max_concurrency, ...), asked through generation's LLM client."""

    enabled: bool = False
    models: list[LiteLLMModel] = Field(default_factory=list)
    min_agreement: float = Field(0.5, ge=0.0, le=1.0, description="share of judges that must say 'fits'")
    severity: Severity = "warn"
    timeout_s: float = Field(30.0, gt=0, description="per request, for judges whose table sets no timeout_s")

    @model_validator(mode="before")
    @classmethod
    def _judges(cls, data: Any) -> Any:
        """A string is a LiteLLM model named after itself; every judge answers one word, deterministically
        (JUDGE_DEFAULTS), within `timeout_s`, unless its table says otherwise."""
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            return data
        timeout = data.get("timeout_s", cls.model_fields["timeout_s"].default)
        judges = []
        for judge in data["models"]:
            table = {"name": judge, "model": judge} if isinstance(judge, str) else judge
            if isinstance(table, dict):
                table = {**JUDGE_DEFAULTS, "timeout_s": timeout, **table}
            judges.append(table)
        return {**data, "models": judges}


class DuplicateConfig(_Section):
    exact: bool = True
    near: bool = True
    near_cosine: float = Field(
        0.98, ge=0.5, le=1.0,
        description="two mentions of the same code whose embeddings have at least this cosine are the same text "
                    "('fumador' / 'fumadora' score 0.981 with me5-small)",
    )
    severity: Severity = "fail"


class LeakageConfig(_Section):
    near_ratio: float = Field(0.9, ge=0.5, le=1.0, description="character similarity (0..1) that counts as near-equal")
    translation_cosine: float = Field(
        0.94, ge=0.5, le=1.0,
        description="embedding cosine with an evaluation mention of the same code, in another language, that counts as a translation",
    )
    paraphrase_cosine: float = Field(
        0.97, ge=0.5, le=1.0,
        description="the same within one language (different mentions of one code are often ~0.93 apart with me5-small)",
    )


class LanguageConfig(_Section):
    min_words: int = Field(3, ge=1, description="mentions with fewer words of 3+ letters are too short to tell their language reliably")
    min_content_words: int = Field(
        2, ge=1, description="below this many content words (3+ letters, not a name or acronym, not a word every "
                             "language's labels share) the language is undetermined")
    vocabulary_vote: bool = Field(
        True, description="keep a mention the terminology's label vocabulary places in the requested language "
                          "(every word a label word of it, or more of them than of the detected language)")
    dictionary_vote: bool = Field(
        True, description="keep a mention every word of which the requested language's spelling lexicon holds "
                          "(hunspell + the terminology's words, as [audit.spelling] loads it): 'antecedentes alergia a "
                          "ácaros' is Spanish as well as Portuguese, whatever a detector guesses. Not for a language "
                          "that borrows another's words ([audit.spelling] borrow: Catalan)")
    min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="detector confidence needed to call a mismatch")
    min_margin: float = Field(0.15, ge=0.0, le=1.0, description="detected language must beat the requested one by this much")
    mixed: bool = True
    mixed_min_words: int = Field(6, ge=2)
    mixed_below_confidence: float = Field(0.9, ge=0.0, le=1.0, description="look for mixed languages only when the requested language scores below this")
    severity: Severity = "fail"
    mixed_severity: Severity = "warn"
    drift_sample: int = Field(2000, ge=100, description="mentions kept per language (random sample) for drift and fingerprints")


class PhiConfig(_Section):
    names: bool = True
    dates: bool = True
    phones: bool = True
    emails: bool = True
    addresses: bool = True
    national_ids: bool = True
    record_numbers: bool = True
    severity: Severity = "fail"


class BiasConfig(_Section):
    outlier_factor: float = Field(2.0, ge=1.0, description="a generator x language cell is an outlier above factor x median reject rate")
    outlier_min_gap: float = Field(0.1, ge=0.0, le=1.0, description="... and at least this many points above it")
    fingerprint: bool = True
    fingerprint_min_per_class: int = Field(20, ge=5)
    fingerprint_folds: int = Field(5, ge=2, le=10)
    top_features: int = Field(10, ge=1, le=100)


class GateConfig(_Section):
    max_malformed_rate: float = Field(
        0.0, ge=0.0, le=1.0,
        description="share of non-blank input lines that are not a readable pair. 0 by default: `clinassay generate` "
                    "writes only valid lines, so any unreadable one means a damaged file whose lost pairs no check saw "
                    "(malformed.jsonl lists them); raise it for hand-made files you accept as partly broken")
    max_reject_rate: float = Field(0.3, ge=0.0, le=1.0)
    max_reject_rate_language: float = Field(0.4, ge=0.0, le=1.0)
    max_reject_rate_generator: float = Field(0.5, ge=0.0, le=1.0)
    min_accepted_per_language: int = Field(1, ge=0)
    min_chapter_coverage: float = Field(0.0, ge=0.0, le=1.0, description="share of planned chapters with an accepted pair, per language")
    max_leaks: int = Field(0, ge=0, description="leaked pairs allowed (they are rejected anyway)")
    max_drift_share: float = Field(1.0, ge=0.0, le=1.0, description="share of drifted features per language (with --reference)")
    min_recall: dict[FaultKind, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict,
        description="`clinassay calibrate` only: the least share of each planted fault kind the audit must reject "
                    "on the user's own pairs ({negation = 0.8, other_chapter = 0.6}); a kind below it, or one that "
                    "could not be planted on the sample, fails (exit 1), so CI fails when a config change blinds "
                    "the audit")


class SpellingConfig(_Section):
    """Misspelt near-words ("pneumção"): a word of the pair's language that no dictionary or terminology
    label knows, yet one edit (two for long words) from one that does."""

    enabled: bool = True
    min_letters: int = Field(4, ge=2, description="shorter words are never flagged ('de', 'ITU')")
    long_word: int = Field(8, ge=4, description="words at least this long may be two edits from the word meant; shorter ones one")
    cognate_min_letters: int = Field(
        10, ge=4, description="words at least this long are also flagged one edit from the cognate of a clinical word "
                              "('esferocrítica' ~ 'spherocytic'), before prefixes and combining forms can explain them")
    dictionary_dirs: list[str] = Field(
        default_factory=lambda: ["/usr/share/hunspell", "/usr/share/myspell", "/usr/share/myspell/dicts"],
        description="where the hunspell .dic/.aff files are looked for (Debian: hunspell-es, hunspell-ca, ...)")
    borrow: dict[AuditLanguage, list[AuditLanguage]] = Field(
        default_factory=lambda: {"ca": ["es"]},
        description="languages whose terminology words also count as words of another: the terminology has no "
                    "Catalan labels, so Catalan takes the Spanish clinical vocabulary")
    usage_zipf: float | None = Field(
        1.0, ge=0.0, le=8.0,
        description="a word wordfreq's large list of the language (web, subtitles, Wikipedia, books) has seen at least "
                    "this often (Zipf scale: 1.0 is 10 times in a billion words) is in use, though no dictionary has "
                    "it: 'acúfenos', 'yugal'; the LLMs' near-words ('esferocrítica', 'pneumção') are in none. None: off")
    usage_typo_margin: float = Field(
        2.0, ge=0.0,
        description="... unless the word it is near is this much more common (Zipf, 2.0 = 100 times): then it is a "
                    "typo people make too ('diabetis' 1.4 beside 'diabetes' 3.8)")
    unknown_word_severity: Severity | None = Field(
        "warn",
        description="a word far from every known word and never seen written: a made-up word ('uroglo', "
                    "'ammonitaciones': 5.3 % of the embedded Gemma's pairs) or a clinical term no list has "
                    "('orquiepididimitis': 1.2 % of CodiEsp dev mentions), so warned, not rejected; None: not reported")
    cache_dir: str | None = Field(None, description="where the expanded lexicons are cached (default: the user's clinassay cache)")
    severity: Severity = Field(
        "fail", description="fail: on CodiEsp dev diagnoses (correct, real Spanish) 1.3% of mentions are flagged, a third "
                            "of them the clinicians' own typos (bench/audit_spelling.py)")


class RayConfig(_Section):
    """`[audit.ray]`: how a Ray audit (`engine = "ray"`) spreads over the cluster (docs/scaling.md)."""

    workers: int | None = Field(None, ge=1, description="audit actors (each loads the encoder once); default: as many "
                                                        "as the cluster has CPUs for (`num_cpus` each)")
    num_cpus: float = Field(1.0, gt=0, description="CPUs each audit actor reserves")
    num_gpus: float = Field(0.0, ge=0, description="GPUs each audit actor reserves (its encoder then runs on the GPU); "
                                                   "fractions share a GPU between actors")
    partition_pairs: int = Field(20000, ge=100, description="about this many pairs per code partition (a partition "
                                                            "is audited in one piece, by one actor)")
    range_mb: float = Field(16.0, gt=0, description="MB of input each read task reads")


class AuditConfig(_Section):
    languages: list[AuditLanguage] = Field(default_factory=lambda: list(LANGUAGES), min_length=1)
    encoder: str = Field("me5-small", description="encoder name for the embedding checks")
    embeddings: bool = Field(True, description="run the embedding checks (dense fit, near-duplicate, translation leaks, embedding drift)")
    chunk_size: int = Field(2000, ge=1, description="pairs read and checked at a time (bounds memory)")
    encode_batch_size: int = Field(256, ge=1, description="256 encodes short mentions ~2x faster than 64 with me5-small on CPU")
    engine: Literal["local", "ray"] = Field(
        "local", description="where the per-pair checks run: this process, or a Ray cluster (`pip install clinassay[ray]`); "
                             "the decisions and the summary are the same")
    address: str | None = Field(None, description="the Ray cluster: 'auto' (the one `ray start` runs here), "
                                                  "'ray://HOST:10001', or none to start a local one for the audit")
    ray: RayConfig = RayConfig()
    validity: ValidityConfig = ValidityConfig()
    consistency: ConsistencyConfig = ConsistencyConfig()
    fit: FitConfig = FitConfig()
    jury: JuryConfig = JuryConfig()
    duplicate: DuplicateConfig = DuplicateConfig()
    leakage: LeakageConfig = LeakageConfig()
    language: LanguageConfig = LanguageConfig()
    spelling: SpellingConfig = SpellingConfig()
    phi: PhiConfig = PhiConfig()
    bias: BiasConfig = BiasConfig()
    gate: GateConfig = GateConfig()
