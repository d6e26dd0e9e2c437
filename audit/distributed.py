"""The audit on a Ray cluster: the same per-chunk function, partitions cut by code, state merged exactly.

    read ranges ─▶ lines (line, raw, partition, id) ─▶ repeated ids (groupby id) ─┐ broadcast, with
                                                   └─▶ groupby partition ─▶ audit actors ─▶ sort by line ─▶ driver
                                                                         (eval-set vectors)

- Ray Data reads the source (one JSONL file or a folder of shards) in byte ranges that start on a line
  (audit/source.py), so every worker numbers its lines as a single reader would.
- Each line goes to the partition of its code (`partition_of`): exact and near duplicates share their
  code, so each partition's duplicate search is complete, and in input order it finds the same first
  occurrence as a single stream does.
- The one cross-code per-pair state is an `id` given twice: the ids that repeat (a Ray Data groupby) and
  the line of their first occurrence are broadcast, so every partition rejects the later ones exactly as
  the local audit does. The evaluation set, with its vectors encoded once on the driver, is broadcast too
  (leakage is a per-pair lookup against it).
- Audit actors (`map_groups` with a class: one encoder load per actor, `num_gpus` when asked) run
  `Auditor.audit_chunk` over their partition in chunks of `chunk_size`, then ship the partition's state
  (`Auditor.take_state`); the driver merges the states (`Auditor.merge_state`, audit/state.py) and takes
  the decisions back in line order, so the files and summary are the local audit's.
- A worker that dies mid-partition is restarted by Ray and the partition audited again from its start;
  the driver checks that every line got exactly one decision.

Ray is imported only here, and only when this engine runs (`pip install clinassay[ray]`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from dataclasses import asdict
from typing import Any, Iterator

from clinassay.audit.config import AuditConfig
from clinassay.audit.findings import Decision
from clinassay.audit.reader import Malformed, Parsed, chunked, parse_raw
from clinassay.audit.references import EvalSet
from clinassay.audit.source import ByteRange, PairsSource
from clinassay.terminology.codes import MalformedCodeError, normalize_code
from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike

STATE_LINE = 0  # the line a partition's state row sorts under: before every decision (lines start at 1)
RAY_EXTRA = "pip install 'clinassay[ray]'"


# ---------------------------------------------------------------- plain functions (no Ray needed)
def partition_key(parsed: Parsed | Malformed) -> str:
    """The code a pair's duplicates share (the terminology's spelling of it); '' for unreadable pairs."""
    if isinstance(parsed, Malformed):
        return ""
    try:
        return normalize_code(parsed.pair.code)
    except MalformedCodeError:
        return ""


def partition_of(key: str, partitions: int) -> int:
    """A stable partition number for a code (the same in every process and run)."""
    digest = hashlib.blake2b(key.encode("utf-8", errors="surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % partitions


def given_id(parsed: Parsed | Malformed) -> str:
    """The id a pair names itself by, as the auditor reads it ('' when it gives none)."""
    if isinstance(parsed, Malformed):
        return ""
    given = parsed.record.get("id")
    return str(given) if given else ""


def read_range(byte_range: ByteRange, partitions: int) -> dict[str, list[Any]]:
    """The non-blank lines of a range as rows: line number, raw bytes, partition, given id."""
    rows: dict[str, list[Any]] = {"line": [], "raw": [], "first": [], "part": [], "id": []}
    for n, raw, first in byte_range.lines():
        parsed = parse_raw(n, raw, first=first)
        if parsed is None:
            continue
        key = partition_key(parsed)
        rows["line"].append(n)
        rows["raw"].append(raw)
        rows["first"].append(first)
        # unreadable lines have no code to share: spread them by line
        rows["part"].append(partition_of(key, partitions) if key else n % partitions)
        rows["id"].append(given_id(parsed))
    return rows


class PartitionAuditor:
    """What one worker holds: an auditor whose models load once (on first use) and audits partition after
    partition, shipping each partition's decisions and state."""

    def __init__(self, config: AuditConfig, *, encoder: Any = None, eval_set: EvalSet | None = None,
                 repeated_ids: dict[str, int] | None = None, terminology: TerminologyLike | None = None, reference: Any = None) -> None:
        self.config = config
        self.encoder = encoder
        self.eval_set = eval_set
        self.reference = reference
        self.repeated_ids = dict(repeated_ids or {})
        self.terminology = terminology
        self._auditor = None

    @property
    def auditor(self):
        if self._auditor is None:
            from clinassay.audit.auditor import Auditor

            self._auditor = Auditor(self.config, terminology=self.terminology, encoder=self.encoder,
                                    eval_set=self.eval_set, reference=self.reference)
        return self._auditor

    def audit(self, lines: list[tuple[int, bytes, bool]]) -> Iterator[tuple[int, str, Any]]:
        """(line, kind, object) for every line of one partition, in line order, then (0, 'state', AuditState).
        kind is 'decision' (a Decision or Malformed) or 'state'."""
        auditor = self.auditor
        # an id given twice: the later lines point at the first, wherever it is
        auditor.first_line_of_id = dict(self.repeated_ids)
        parsed = (p for n, raw, first in sorted(lines) if (p := parse_raw(n, raw, first=first)) is not None)
        for chunk in chunked(parsed, self.config.chunk_size):
            for decision in auditor.audit_chunk(chunk):
                yield decision.line, "decision", decision
        auditor.first_line_of_id = {}
        yield STATE_LINE, "state", auditor.take_state()


# --------------------------------------------------------------------------------- Ray
def import_ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ClinassayInputError(f"engine 'ray' needs Ray, which is not installed: {RAY_EXTRA}") from exc
    return ray


def _read_ranges(batch: dict[str, Any], partitions: int) -> dict[str, Any]:
    """Ray Data UDF (a task): a batch of byte ranges -> their lines."""
    import numpy as np

    out: dict[str, list[Any]] = {"line": [], "raw": [], "first": [], "part": [], "id": []}
    for path, start, end, first_line in zip(batch["path"], batch["start"], batch["end"], batch["first_line"]):
        rows = read_range(ByteRange(str(path), int(start), int(end), int(first_line)), partitions)
        for key, values in rows.items():
            out[key].extend(values)
    return {"line": np.asarray(out["line"], dtype=np.int64), "raw": np.asarray(out["raw"], dtype=object),
            "first": np.asarray(out["first"], dtype=bool), "part": np.asarray(out["part"], dtype=np.int64),
            "id": np.asarray(out["id"], dtype=object)}


class _AuditActor:
    """Ray Data UDF (an actor): audits whole partitions (groups) with one PartitionAuditor for its life."""

    def __init__(self, shared: Any) -> None:
        import ray

        if isinstance(shared, ray.ObjectRef):
            shared = ray.get(shared)
        config, encoder, eval_set, reference, repeated = shared
        self.worker = PartitionAuditor(config, encoder=encoder, eval_set=eval_set, reference=reference,
                                       repeated_ids=repeated)
        self.batch_rows = max(1, config.chunk_size)

    def __call__(self, group: dict[str, Any]) -> Iterator[dict[str, Any]]:
        import numpy as np

        lines = [(int(n), bytes(raw), bool(first)) for n, raw, first in zip(group["line"], group["raw"], group["first"])]
        rows: list[tuple[int, str, bytes]] = []
        for line, kind, obj in self.worker.audit(lines):
            rows.append((line, kind, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)))
            if len(rows) >= self.batch_rows:
                yield _rows_batch(rows, np)
                rows = []
        if rows:
            yield _rows_batch(rows, np)


def _rows_batch(rows: list[tuple[int, str, bytes]], np: Any) -> dict[str, Any]:
    return {"line": np.asarray([r[0] for r in rows], dtype=np.int64),
            "kind": np.asarray([r[1] for r in rows], dtype=object),
            "payload": np.asarray([r[2] for r in rows], dtype=object)}


def _with_ids(batch: dict[str, Any]) -> dict[str, Any]:
    keep = batch["id"] != ""
    return {"id": batch["id"][keep], "line": batch["line"][keep]}


def _repeats(batch: dict[str, Any]) -> dict[str, Any]:
    keep = batch["count()"] > 1
    return {"id": batch["id"][keep], "first": batch["min(line)"][keep]}


class RayAuditEngine:
    """`[audit] engine = "ray"`: see the module docstring."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, partition_pairs: int = 20000, range_mb: float = 16.0,
                 encoder: Any = None) -> None:
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.partition_pairs = partition_pairs
        self.range_bytes = max(1, int(range_mb * (1 << 20)))
        self.encoder = encoder
        self.figures: dict[str, Any] = {}  # partitions, workers, repeated ids of the last run

    @classmethod
    def from_config(cls, config: AuditConfig, *, encoder: Any = None) -> "RayAuditEngine":
        r = config.ray
        return cls(address=config.address, workers=r.workers, num_cpus=r.num_cpus, num_gpus=r.num_gpus,
                   partition_pairs=r.partition_pairs, range_mb=r.range_mb, encoder=encoder)

    def _connect(self, ray: Any) -> bool:
        """Join the configured cluster, or start a local one; True when this call started it."""
        if ray.is_initialized():
            return False
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False,
                     include_dashboard=False, ignore_reinit_error=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a new local cluster"
            raise ClinassayInputError(f"cannot start or reach the Ray cluster ({where}): {exc}") from exc
        return True

    def decisions(self, source: PairsSource, auditor: Any) -> Iterator[Decision | Malformed]:
        ray = import_ray()
        started = self._connect(ray)
        try:
            yield from self._run(ray, source, auditor)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, source: PairsSource, auditor: Any) -> Iterator[Decision | Malformed]:
        from ray.data.aggregate import Count, Min

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = True
        # task-based shuffles: no aggregator actors competing with the audit actors for the CPUs
        context.shuffle_strategy = ray.data.context.ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        config: AuditConfig = auditor.config
        scan = source.scan(range_bytes=self.range_bytes)
        if not scan.ranges:
            return
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        # by default one CPU stays free for reading and shuffling: actors holding every CPU would starve them
        workers = self.workers or max(1, int((cpus - 1 if cpus > 1 else cpus) // self.num_cpus))
        # several partitions per actor: the shuffle's range boundaries are sampled, and with as many
        # partitions as actors it may hand one actor all of them (measured: 4 partitions, 2 actors, 1 busy)
        partitions = max(4 * workers, math.ceil(scan.lines / self.partition_pairs))
        workers = min(workers, partitions)

        ranges = ray.data.from_items([asdict(r) for r in scan.ranges], override_num_blocks=len(scan.ranges))
        lines = ranges.map_batches(_read_ranges, fn_kwargs={"partitions": partitions}, batch_size=1,
                                   batch_format="numpy").materialize()
        repeated_rows = (lines.select_columns(["id", "line"]).map_batches(_with_ids, batch_format="numpy")
                         .groupby("id", num_partitions=partitions).aggregate(Count(), Min("line"))
                         .map_batches(_repeats, batch_format="numpy").take_all())
        repeated = {str(r["id"]): int(r["first"]) for r in repeated_rows}

        eval_set = auditor.resources.eval_set
        if eval_set is not None and auditor.encoder is not None:
            # broadcast: encoded once here, every actor looks pairs up against the same vectors
            eval_set.embed(auditor.encoder, batch_size=config.encode_batch_size)
        shared = ray.put((config, self.encoder if config.embeddings else None, eval_set,
                          auditor.resources.reference, repeated))
        self.figures = {"partitions": partitions, "workers": workers, "ranges": len(scan.ranges),
                        "repeated_ids": len(repeated), "cluster_cpus": cpus}

        audited = lines.groupby("part", num_partitions=partitions).map_groups(
            _AuditActor, fn_constructor_args=(shared,), compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus or None, batch_format="numpy")
        expected = lines.count()  # non-blank lines read: each must get exactly one decision
        yielded, last = 0, STATE_LINE
        for batch in audited.sort("line").iter_batches(batch_size=4096, batch_format="numpy"):
            for line, kind, payload in zip(batch["line"], batch["kind"], batch["payload"]):
                obj = pickle.loads(payload)
                if kind == "state":
                    auditor.merge_state(obj)
                    continue
                if int(line) <= last:
                    raise RuntimeError(f"line {int(line)} got a second decision from the Ray audit")
                last = int(line)
                yielded += 1
                yield obj
        merged = auditor.accepted + auditor.rejected + auditor.malformed_count
        if not yielded == merged == expected:
            raise RuntimeError(f"the Ray audit lost or repeated decisions: {expected} lines read, {yielded} "
                               f"decisions, {merged} counted in the partitions' states")
