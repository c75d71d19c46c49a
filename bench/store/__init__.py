"""The record store: run records (one per method, dataset, split, stream and seed), written
atomically, indexed, and loadable into pandas. Guarantees: docs/store.md.

    from slrbench.store import RecordStore
    store = RecordStore()  # $SLRBENCH_RESULTS, else ./results
    record = store.latest_record(split="test", stream="j")

Modules: `records` (the record and its validation), `record_store` (`RecordStore`: run
directories plus a rebuildable index), `atomic` (temp-and-rename writes), `provenance`
(hashes, code version, environment).
"""

from slrbench.store.record_store import RecordStore
from slrbench.store.records import (
                                    RECORD_VERSION,
                                    RunRecord,
                                    read_meta,
                                    read_record,
                                    validate_record,
                                    write_record,
)

__all__ = ["RECORD_VERSION", "RecordStore", "RunRecord", "read_meta", "read_record",
           "validate_record", "write_record"]
