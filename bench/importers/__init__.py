"""`slrbench import`: score files computed elsewhere (upstream releases, your own GPUs) become
ordinary records, checked against the registry (docs/importing.md)."""

from slrbench.importers.build import ImportRequest, canonical_id, import_scores
from slrbench.importers.readers import FORMATS
from slrbench.safe_pickle import load_pickle

__all__ = ["FORMATS", "ImportRequest", "canonical_id", "import_scores", "load_pickle"]
