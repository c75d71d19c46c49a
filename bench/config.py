"""Nested run configurations: dotted overrides (`train.epochs=5`) applied with checking."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from slrbench.errors import SlrbenchError

# Fields added to a section after records existed, with their defaults: a config leaves them
# out while they hold the default (so older configs and their hashes stay as they were), and
# `--set` sets them like any other field.
OPTIONAL_FIELDS: dict[str, dict[str, Any]] = {"train": {"sync_bn": False}}


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with each dotted key replaced; unknown keys are an error, so a typo
    never silently trains the default.

    ``train.epochs`` also rescales the warm-up and the step milestones of the ``train`` section
    (they are fractions of the run: a 30-epoch recipe cut to 10 epochs warms up for a third as
    long), unless those are overridden too."""
    result = copy.deepcopy(config)
    for dotted, value in overrides.items():
        node = result
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SlrbenchError(f"override '{dotted}': no section '{part}' in the config")
            node = node[part]
        optional = OPTIONAL_FIELDS.get(".".join(parents), {})
        if leaf not in node and leaf in optional:  # absent = its default; set only when not
            value = checked_override(dotted, optional[leaf], value)
            if value != optional[leaf]:
                node[leaf] = value
            continue
        if leaf not in node:
            raise SlrbenchError(
                f"override '{dotted}': unknown field '{leaf}'; expected one of "
                f"{', '.join(sorted({*node, *optional}))}"
            )
        node[leaf] = checked_override(dotted, node[leaf], value)
    if "train.epochs" in overrides:
        rescale_schedule(result["train"], int(config["train"]["epochs"]), overrides)
    return result


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a section"


def checked_override(dotted: str, current: Any, value: Any) -> Any:
    """An override keeps the field's kind (a switch stays true/false, a count an integer), so
    `train.epochs=ten` fails here with the field's name instead of deep inside training. A
    field that is null by default takes anything; 3.0 for an integer field is 3."""
    if current is None:
        return value
    expected, found = _kind(current), _kind(value)
    integer_expected = isinstance(current, int) and not isinstance(current, bool)
    if integer_expected and isinstance(value, float) and value.is_integer():
        value = int(value)
    if found != expected or (integer_expected and isinstance(value, float)):
        shown = "an integer" if integer_expected else expected
        raise SlrbenchError(f"override '{dotted}': found {value!r}; expected {shown} (the "
                            f"field's default is {current!r})")
    return value


def rescale_schedule(train: dict[str, Any], recipe_epochs: int, overrides: dict[str, Any]) -> None:
    """Scale the warm-up and the step milestones of a training section written for
    `recipe_epochs` epochs to its own `epochs` (except fields named in `overrides`)."""
    epochs = int(train["epochs"])
    factor = epochs / max(recipe_epochs, 1)
    if "warmup_epochs" in train and "train.warmup_epochs" not in overrides:
        train["warmup_epochs"] = round(train["warmup_epochs"] * factor)
    if train.get("milestones") and "train.milestones" not in overrides:
        scaled = {round(m * factor) for m in train["milestones"]}
        train["milestones"] = sorted(m for m in scaled if 0 < m < epochs)


def check_fields(cls: type, data: Mapping[str, Any], where: str) -> None:
    """Refuse keys of ``data`` that are not fields of the dataclass ``cls``."""
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SlrbenchError(f"{where}: unknown field '{unknown[0]}'; expected one of {known}")
