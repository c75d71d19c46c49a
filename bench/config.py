"""Nested run configurations: dotted overrides (`train.epochs=5`) applied with checking."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import fields
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
                f"override '{dotted}': unknown field '{leaf}'; expected one of "
                f"{', '.join(sorted(node))}"
            )
        node[leaf] = value
    return result


def check_fields(cls: type, data: Mapping[str, Any], where: str) -> None:
    """Refuse keys of ``data`` that are not fields of the dataclass ``cls``."""
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SlrbenchError(f"{where}: unknown field '{unknown[0]}'; expected one of {known}")
