"""The record store: run directories plus a rebuildable JSONL index.

```
<root>/runs/<run_id>/      one record each (slrbench.store.records), written atomically
<root>/index.jsonl         one row per record; a cache, never the source of truth
<root>/index.skipped.json  run dirs the last rebuild left out, with the reason: corrupt ones, and
                           members of partly committed groups (a crash between the renames)
<root>/.index.lock         filelock serialising index appends, rebuilds and reads
```

`add` stages the record outside the lock (large arrays do not block other writers), then under
the lock renames it into place and appends its index row, so a concurrent rebuild sees either
both or neither. A crash between the two leaves a run dir without a row: the next `index()`
notices the disagreement and rebuilds. Records are immutable once written; editing a run.json
in place is not detected (call `rebuild_index()`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from slrbench.errors import SlrbenchError
from slrbench.metrics import true_class_rank
from slrbench.store.atomic import (
    StagedDirectory,
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
    is_temp_name,
    remove_path,
    stale_temp_paths,
)
from slrbench.store.provenance import parse_utc
from slrbench.store.records import (
    _RUN_ID_RE,
    OUTPUTS,
    RUN_JSON,
    RUNS_DIR,
    RunRecord,
    read_meta,
    read_record,
    stage_record,
    validate_meta,
)
from slrbench.store.verify import verify_record

INDEX_FILE = "index.jsonl"
SKIPPED_FILE = "index.skipped.json"
LOCK_FILE = ".index.lock"

# Index row fields taken from run.json, in column order; metrics follow, flattened.
META_COLUMNS = (
    "run_id", "method", "dataset", "subset", "split", "stream", "seed", "preset",
    "config_sha256", "checkpoint_sha256", "score_kind", "test_tuned", "val_test_merged",
    "selection_split", "num_classes", "n_eval", "n_official", "finished_at", "training_sha256",
    "reused_from",
)
INDEX_FIELDS = ("run_id", "path", *META_COLUMNS[1:], "fusion_strategy")
_CI_SUFFIXES = (("ci_low", "_lo"), ("ci_high", "_hi"))


def _number(value: Any) -> float | None:
    # Non-finite numbers become null: one bad value must never make the index unwritable.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """{"pi@1": {"value", "ci_low", "ci_high"}} -> {"pi@1": v, "pi@1_lo": lo, "pi@1_hi": hi}.

    Plain numbers are taken as values without CI; anything else (nested tables) is skipped.
    """
    flat: dict[str, float | None] = {}
    for name, entry in metrics.items():
        if isinstance(entry, Mapping) and "value" in entry:
            flat[name] = _number(entry.get("value"))
            for key, suffix in _CI_SUFFIXES:
                flat[name + suffix] = _number(entry.get(key))
        elif entry is None or _number(entry) is not None:
            flat[name] = _number(entry)
    return flat


def index_row(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The index row of one record (path relative to the store root)."""
    row: dict[str, Any] = {"run_id": meta["run_id"], "path": f"{RUNS_DIR}/{meta['run_id']}"}
    for name in META_COLUMNS[1:]:
        row[name] = meta.get(name)
    fusion = meta.get("fusion")
    row["fusion_strategy"] = fusion.get("strategy") if isinstance(fusion, Mapping) else None
    for name, value in flatten_metrics(meta.get("metrics") or {}).items():
        row.setdefault(name, value)  # a metric never shadows an identity field
    return row


class RecordStore:
    """Run records under `root` (default location: `slrbench.paths.results_dir()`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:  # where the CLI writes: $SLRBENCH_RESULTS, else ./results
            from slrbench.paths import results_dir

            root = results_dir()
        self.root = Path(root).expanduser().absolute()
        self.runs = self.root / RUNS_DIR
        self.index_path = self.root / INDEX_FILE
        self.skipped_path = self.root / SKIPPED_FILE
        self.lock_path = self.root / LOCK_FILE
        self.warnings: list[str] = []  # corrupt run dirs found by the last rebuild

    def __repr__(self) -> str:
        return f"RecordStore({str(self.root)!r})"

    # ----------------------------------------------------------------------------- locking

    def _writable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # A read-only store (someone else's results) is read without the lock and never rebuilt
        # on disk: nobody can be writing to it through us.
        with FileLock(str(self.lock_path), timeout=600) if self._writable() else nullcontext():
            yield

    # ------------------------------------------------------------------------------ writing

    def add(self, record: RunRecord, side_files: Mapping[str, str | Path] | None = None) -> Path:
        """Write `record` atomically and append its index row; returns the run directory."""
        return self.add_group([(record, side_files)])[0]

    def add_group(self, items: Sequence[tuple[RunRecord, Mapping[str, str | Path] | None]]
                  ) -> list[Path]:
        """Write records that belong together (a run's val and test records) so that they
        become visible together or not at all (docs/store.md#pairs-commit-together).

        Every member is validated and staged first (outside the lock); then, under the lock, all
        are renamed into place and their index rows appended in one write. Each member of a group
        of two or more names the whole group in `commit_group`; a crash between the renames
        leaves a partial group, which readers treat as absent and `gc()` removes. Once every
        rename succeeded the group is committed: a failure to append the index (a full disk) no
        longer raises, the index is only marked stale and rebuilt by the next reader.
        """
        records = [record for record, _ in items]
        if len(records) > 1:
            members = [r.run_id for r in records]
            group = {"id": members[0], "members": members}
            records = [RunRecord({**r.meta, "commit_group": group}, r.sample_ids, r.labels,
                                 r.scores, dict(r.extras)) for r in records]
        self.runs.mkdir(parents=True, exist_ok=True)
        staged: list[StagedDirectory] = []
        try:
            for record, (_, side_files) in zip(records, items):
                staged.append(stage_record(self.root, record, side_files))
            lines = "".join(json.dumps(index_row(r.meta), ensure_ascii=False, allow_nan=False)
                            + "\n" for r in records)
            with self._lock():
                paths = self._commit_all(staged)
                self._append_index(lines)
        finally:
            for stage in staged:
                stage.discard()  # no-op once committed
        fsync_dir(self.root)
        return paths

    def _commit_all(self, staged: Sequence[StagedDirectory]) -> list[Path]:
        """Rename every staged member into place, or none: a failed rename removes the members
        already renamed (nobody has seen them: readers wait for the lock we hold)."""
        done: list[Path] = []
        try:
            for stage in staged:
                done.append(stage.commit())
        except BaseException:
            for path in done:
                remove_path(path)
            raise
        return done

    def _append_index(self, lines: str) -> None:
        try:
            with open(self.index_path, "a", encoding="utf-8") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            # The records are committed; the index is a cache. Drop it so the next reader
            # rebuilds it from runs/ instead of trusting a file that may lack these rows.
            with suppress(OSError):
                self.index_path.unlink(missing_ok=True)
            warnings.warn(f"{self.index_path}: not updated ({exc.strerror or exc}); it will be "
                          "rebuilt from runs/ on the next read", stacklevel=4)

    # ------------------------------------------------------------------------------ reading

    def _run_dirs(self) -> set[str]:
        """Names of committed run dirs (temp dirs and stray files are not records)."""
        if not self.runs.is_dir():
            return set()
        names = set()
        for entry in os.scandir(self.runs):
            if is_temp_name(entry.name) or entry.name.startswith("."):
                continue
            # A symlink that resolves nowhere (dangling, or a loop) is a broken record, not a
            # stray file: it is listed as corrupt with its reason by `_scan`.
            if (entry.is_symlink() and _symlink_problem(Path(entry.path))) or _is_dir(entry):
                names.add(entry.name)
        return names

    def _read_index_file(self) -> list[dict[str, Any]] | None:
        """Rows of index.jsonl, or None if missing or damaged (then it is rebuilt)."""
        try:
            text = self.index_path.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        rows = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return None
            if not isinstance(row, dict) or not all(k in row for k in INDEX_FIELDS):
                return None  # damaged, or written by an older index layout
            rows.append(row)
        return rows

    def _read_unindexed(self) -> tuple[dict[str, str], dict[str, str]]:
        """(corrupt, incomplete) run dirs of the last rebuild: run id -> reason."""
        try:
            data = json.loads(self.skipped_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}, {}
        # Anything else (an older flat layout, damage) reads as empty: the sets then disagree
        # with runs/ and the next read rebuilds this cache.
        corrupt = data.get("corrupt") if isinstance(data, dict) else None
        incomplete = data.get("incomplete") if isinstance(data, dict) else None
        return (corrupt if isinstance(corrupt, dict) else {},
                incomplete if isinstance(incomplete, dict) else {})

    def _agrees(self, rows: list[dict[str, Any]], dirs: set[str]) -> bool:
        """Every run dir is indexed exactly once or listed as unindexed, and nothing else."""
        ids = [r["run_id"] for r in rows]
        corrupt, incomplete = self._read_unindexed()
        unindexed = set(corrupt) | set(incomplete)
        return (len(ids) == len(set(ids)) and not (set(ids) & unindexed)
                and set(ids) | unindexed == dirs)

    def _scan(self) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
        """Index rows from run.json files, plus the dirs left out: corrupt ones and members of a
        commit group whose other members are missing (a writer died between the renames)."""
        metas, corrupt = {}, {}
        for name in sorted(self._run_dirs()):
            run_dir = self.runs / name
            try:
                problem = _symlink_problem(run_dir)
                if problem:
                    raise SlrbenchError(f"{run_dir}: a symlink that does not resolve to a "
                                        f"directory ({problem}); expected a run directory")
                meta = read_meta(run_dir)
                validate_meta(meta, str(run_dir / RUN_JSON))
                if meta["run_id"] != name:
                    raise SlrbenchError(f"{run_dir / RUN_JSON}: run_id is {meta['run_id']!r}; "
                                        f"expected the directory name {name!r}")
                if not (run_dir / OUTPUTS).is_file():
                    raise SlrbenchError(
                        f"{run_dir / OUTPUTS}: missing; expected per-sample outputs"
                    )
                metas[name] = meta
            except SlrbenchError as exc:
                corrupt[name] = str(exc)
        incomplete = {}
        for name, meta in metas.items():
            members = (meta.get("commit_group") or {}).get("members") or []
            missing = [m for m in members if m not in metas]
            if missing:
                incomplete[name] = (f"commit group {meta['commit_group'].get('id')!r} lacks "
                                    f"{', '.join(map(str, missing))}")
        rows = [index_row(m) for name, m in metas.items() if name not in incomplete]
        rows.sort(key=lambda r: (r.get("finished_at") or "", r["run_id"]))
        return rows, corrupt, incomplete

    def _rebuild_locked(self) -> list[dict[str, Any]]:
        rows, corrupt, incomplete = self._scan()
        self.warnings = list(corrupt.values())
        if self._writable():
            atomic_write_text(self.index_path, "".join(
                json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows))
            if corrupt or incomplete:
                atomic_write_json(self.skipped_path,
                                  {"corrupt": corrupt, "incomplete": incomplete})
            else:
                self.skipped_path.unlink(missing_ok=True)
        if corrupt:
            warnings.warn(f"{self.root}: {len(corrupt)} run dir(s) could not be indexed: "
                          + "; ".join(self.warnings[:3]), stacklevel=3)
        return rows

    def rebuild_index(self) -> int:
        """Rewrite index.jsonl from runs/*/run.json; returns the number of indexed records.
        Corrupt run dirs are listed in `self.warnings` (and index.skipped.json), not fatal."""
        if not self.root.is_dir():
            self.warnings = []
            return 0
        with self._lock():
            return len(self._rebuild_locked())

    def index(self) -> list[dict[str, Any]]:
        """All index rows (with absolute `path`); rebuilt first if it disagrees with runs/."""
        if not self.root.is_dir():
            return []
        with self._lock():
            rows = self._read_index_file()
            if rows is None or not self._agrees(rows, self._run_dirs()):
                rows = self._rebuild_locked()
        for row in rows:
            row["path"] = str(self.root / row["path"])
        return rows

    def _unindexed(self) -> tuple[dict[str, str], dict[str, str]]:
        """(corrupt, incomplete) run dirs, after bringing the index up to date (a read-only
        store keeps no skipped-file of ours: scan it)."""
        self.index()
        if self._writable():
            return self._read_unindexed()
        _, corrupt, incomplete = self._scan()
        return corrupt, incomplete

    def corrupt_runs(self) -> dict[str, str]:
        """Run dirs that could not be indexed: run id -> reason (naming the file)."""
        return self._unindexed()[0]

    def require_readable(self) -> None:
        """Refuse to go on while a run dir is unreadable: a leaderboard or a fusion must not
        silently drop a record (the error names the first one and its reason)."""
        corrupt = self.corrupt_runs()
        if corrupt:
            reason = next(iter(corrupt.values()))
            raise SlrbenchError(
                f"{reason} ({len(corrupt)} unreadable run dir(s); repair or remove them)")

    def incomplete_runs(self) -> dict[str, str]:
        """Members of partly committed groups (invisible; `gc()` removes them)."""
        return self._unindexed()[1]

    def find(self, **filters: Any) -> list[dict[str, Any]]:
        """Rows whose fields equal the filters; a list/tuple/set value means 'any of'."""
        rows = self.index()
        known = set(INDEX_FIELDS).union(*(r.keys() for r in rows)) if rows else set(INDEX_FIELDS)
        unknown = sorted(set(filters) - known)
        if unknown:
            raise SlrbenchError(
                f"{self.index_path}: unknown filter field(s) {', '.join(unknown)}; expected index "
                f"fields ({', '.join(INDEX_FIELDS)}) or metric names"
            )
        return [r for r in rows if all(_matches(r.get(k), v) for k, v in filters.items())]

    def load(self, run_id: str) -> RunRecord:
        """The full record (arrays included), validated on read."""
        if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
            raise SlrbenchError(f"run id {run_id!r}: not a valid run id; expected a run directory "
                                f"name under {self.runs}")
        path = self.runs / run_id
        if not path.is_dir():
            raise SlrbenchError(f"{path}: no such run in the store; expected one of the run ids "
                                "listed by `index()`")
        return read_record(path)

    def load_checked(self, run_id: str) -> RunRecord:
        """`load`, then the checks every number must pass before it is used
        (docs/store.md#checked-on-load): headline metrics recomputed from the stored arrays,
        classes and ids against the dataset registry."""
        from slrbench.datasets.registry import registry_facts  # the store itself needs no datasets

        record = self.load(run_id)
        verify_record(record, registry_facts(record.dataset), str(self.runs / run_id / RUN_JSON))
        return record

    def latest(self, **filters: Any) -> dict[str, Any] | None:
        """The matching row with the newest finished_at (ties: larger run_id), or None."""
        rows = self.find(**filters)
        if not rows:
            return None
        floor = parse_utc("0001-01-01T00:00:00+00:00")
        return max(rows, key=lambda r: (parse_utc(r.get("finished_at")) or floor, r["run_id"]))

    def latest_record(self, **filters: Any) -> RunRecord:
        """The record of `latest(**filters)`, checked on load; a one-line `SlrbenchError`
        saying what was searched where when nothing matches (an empty store, a typo)."""
        row = self.latest(**filters)
        if row is None:
            wanted = ", ".join(f"{k}={v!r}" for k, v in filters.items()) or "any record"
            total = len(self.index())
            state = "the store is empty" if total == 0 else f"it holds {total} other record(s)"
            raise SlrbenchError(
                f"{self.root}: no record matches {wanted} ({state}); expected the results of "
                "`slrbench run` here (set SLRBENCH_RESULTS or pass the folder)")
        return self.load_checked(row["run_id"])

    def frame(self, **filters: Any) -> pd.DataFrame:
        """One row per record: index fields, then each metric with its CI columns
        (`pi@1`, `pi@1_lo`, `pi@1_hi`, ...), metrics sorted by name."""
        rows = self.find(**filters)
        fixed = list(INDEX_FIELDS)
        metric_cols = sorted({k for r in rows for k in r} - set(fixed), key=_metric_order)
        return pd.DataFrame(rows, columns=fixed + metric_cols)

    def outputs_frame(self, run_id: str) -> pd.DataFrame:
        """Per-sample table: sample_id, label, pred (argmax), score_true, rank (pessimistic:
        ties count against the sample, docs/evaluation.md#tie-rule) and hit1 (rank == 1)."""
        rec = self.load(run_id)
        if rec.score_kind == "pred_top1":
            pred = rec.scores
            score_true = np.full(rec.n, np.nan, dtype=np.float32)
            rank = np.where(pred == rec.labels, 1, 2)  # only hit / miss is known
        else:
            pred = rec.scores.argmax(axis=1)
            score_true = rec.scores[np.arange(rec.n), rec.labels]
            rank = true_class_rank(rec.scores, rec.labels)
        return pd.DataFrame({
            "sample_id": rec.sample_ids,
            "label": rec.labels,
            "pred": pred.astype(np.int64),
            "score_true": score_true,
            "rank": rank.astype(np.int64),
            "hit1": rank == 1,
        })

    # --------------------------------------------------------------------------- upkeep

    def gc(self, max_age_s: float = 3600.0) -> list[Path]:
        """Remove `.tmp-*` leftovers of crashed writers (dead process on this host, or older
        than `max_age_s`) and the members of partly committed groups; returns what was
        removed."""
        removed = []
        for directory in (self.root, self.runs):
            for path in stale_temp_paths(directory, max_age_s):
                remove_path(path)
                removed.append(path)
        if self._writable():
            with self._lock():
                # Under the lock no live writer is between renames: a partial group is a crash.
                incomplete = self._scan()[2]
                for name in incomplete:
                    remove_path(self.runs / name)
                    removed.append(self.runs / name)
                if incomplete:
                    self._rebuild_locked()
        return removed


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: reported by _symlink_problem
        return False


def _symlink_problem(path: Path) -> str | None:
    """Why the symlink `path` does not lead to a directory (None: not a symlink, or fine)."""
    if not path.is_symlink():
        return None
    try:
        return None if path.resolve(strict=True).is_dir() else "it points at a file"
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "a symlink loop"
    except OSError as exc:
        return "a symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))


def _metric_order(column: str) -> tuple[str, int]:
    """Sort key putting each metric before its _lo and _hi columns."""
    for i, (_key, suffix) in enumerate(_CI_SUFFIXES, start=1):
        if column.endswith(suffix):
            return column[: -len(suffix)], i
    return column, 0


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, (list, tuple, set, frozenset)):
        return any(_matches(value, w) for w in wanted)
    if isinstance(wanted, bool) or isinstance(value, bool):
        return type(value) is type(wanted) and value == wanted  # seed=0 must not match False
    return value == wanted
