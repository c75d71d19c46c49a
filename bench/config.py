"""Nested run configurations: dotted overrides (`train.epochs=5`) applied with checking."""

from __future__ import annotations

import copy
from typing import Any

from slrbench.errors import SlrbenchError


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with each dotted key replaced; unknown keys are an error, so a typo
    never silently trains the default."""
    result = copy.deepcopy(config)
    for dotted, value in overrides.items():
        node = result
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SlrbenchError(f"override '{dotted}': no section '{part}' in the config")
            node = node[part]
        if leaf not in node:
            raise SlrbenchError(
                f"override '{dotted}': unknown field '{leaf}'; expected one of {', '.join(sorted(node))}"
            )
        node[leaf] = value
    return result
