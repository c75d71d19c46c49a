"""Fusion of a method's stream records, fitted on val (docs/evaluation.md#fusion-protocol).

Modules, in data-flow order: `records` (input records -> aligned score stacks; fused results
-> records), `strategies` (fixed, mean, grid, bayes, hier, stack and the fit-on-val protocol),
`engine` (vectorised scoring of many weight vectors), `lines` (hit counts along weight lines),
`subset_search` (weights re-fitted on every stream subset at once), `ablation` (leave-one-out,
all subsets, greedy), `pipeline` (`slrbench fuse` end to end), `report` (fusion tables and
figures).
"""

from slrbench.fusion.pipeline import FusionOutcome, default_options, fuse_from_store, fuse_records
from slrbench.fusion.strategies import (
                                        STRATEGIES,
                                        FusionOptions,
                                        FusionResult,
                                        StreamStack,
                                        fit,
                                        fit_protocol,
)

__all__ = ["STRATEGIES", "FusionOptions", "FusionOutcome", "FusionResult", "StreamStack",
           "default_options", "fit", "fit_protocol", "fuse_from_store", "fuse_records"]
