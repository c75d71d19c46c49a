"""`slrbench fuse`: fuse a method's stream records (`slrbench.fusion`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from slrbench.cli.common import ResultsOption, bootstrap_config, console, open_store, split_list
from slrbench.errors import MAX_GRID_STEPS, SlrbenchError

if TYPE_CHECKING:
    from slrbench.methods.base import FusionRecipe


def parse_grid(text: str | None) -> dict[str, list[float]] | None:
    """`lo:hi:steps` for every stream (key "*"), or `j=1:2:11,b=0.5:1.5:11` per stream."""
    import numpy as np

    if not text:
        return None

    def values(spec: str) -> list[float]:
        try:
            low, high, steps = spec.split(":")
            count = int(steps)
            if not 1 <= count <= MAX_GRID_STEPS:
                raise ValueError
            return [round(float(v), 6) for v in np.linspace(float(low), float(high), count)]
        except ValueError:
            raise SlrbenchError(
                f"--grid: found {spec!r}; expected lo:hi:steps like 0:1.2:7 (steps 1 to "
                f"{MAX_GRID_STEPS:,})"
            ) from None

    if "=" not in text:
        return {"*": values(text)}
    grid = {}
    for part in text.split(","):
        name, _, spec = part.partition("=")
        grid[name.strip()] = values(spec.strip())
    return grid


def parse_weights(text: str | None) -> dict[str, float] | None:
    """`j=1,b=0.9,...` (stream or group name = weight) for fixed weights."""
    import math

    from slrbench.fusion.strategies import MAX_WEIGHT

    if text is None:
        return None
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sign, value = (piece.strip() for piece in part.partition("="))
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not name or not sign or not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
            raise SlrbenchError(f"--weights: found {part.strip()!r}; expected name=weight with a "
                                f"weight from 0 to {MAX_WEIGHT:g}, e.g. j=1,b=0.9")
        if name in weights:
            raise SlrbenchError(f"--weights: {name!r} given twice; expected one weight per name")
        weights[name] = weight
    return weights


def parse_groups(text: str | None) -> dict[str, tuple[str, ...]] | None:
    """`body=j,b;hand=hj,hb`: named groups of streams for two-level fusion."""
    if text is None:
        return None
    groups: dict[str, tuple[str, ...]] = {}
    for part in text.split(";"):
        name, sign, listed = part.partition("=")
        streams = tuple(m.strip() for m in listed.split(",") if m.strip())
        if not name.strip() or not sign or not streams:
            raise SlrbenchError(f"--groups: found {part.strip()!r}; expected name=stream,stream "
                                "groups separated by ';', e.g. body=j,b;hand=hj,hb")
        if name.strip() in groups:
            raise SlrbenchError(f"--groups: group {name.strip()!r} given twice; expected "
                                "distinct group names")
        groups[name.strip()] = streams
    members = [s for group in groups.values() for s in group]
    twice = sorted({s for s in members if members.count(s) > 1})
    if twice:
        raise SlrbenchError(f"--groups: stream {twice[0]!r} is in two groups; expected each "
                            "stream in one group")
    return groups


def fuse(
    method: Annotated[str, typer.Option(help="Method whose stream records to fuse.")],
    dataset: Annotated[str, typer.Option(help="Dataset name.")],
    strategy: Annotated[str | None, typer.Option(
        help="fixed, mean, grid, bayes, hier or stack (default: the method's recipe).")] = None,
    space: Annotated[str | None, typer.Option(
        help="Score space: logits, probs or log_probs (default: the method's recipe).")] = None,
    streams: Annotated[str | None, typer.Option(
        help="Comma-separated streams (default: every stream with records).")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Sampler, cross-fitting and stacking seed (default 0).")] = None,
    trials: Annotated[int | None, typer.Option(
        help="bayes / hier: trials per search (default 200).")] = None,
    grid: Annotated[str | None, typer.Option(
        help="grid: lo:hi:steps for all streams, or j=1:2:11,b=0.5:1.5:11.")] = None,
    weights: Annotated[str | None, typer.Option(
        help="Fixed weights for any method, e.g. j=1,b=0.9 (implies --strategy fixed).")
    ] = None,
    weights_chosen_on: Annotated[str | None, typer.Option(
        help="With --weights: the split they were chosen on upstream (val, test, unknown).")
    ] = None,
    groups: Annotated[str | None, typer.Option(
        help="Two-level groups for hier or fixed, e.g. body=j,b;hand=hj,hb.")] = None,
    level_search: Annotated[str | None, typer.Option(
        help="hier: bayes or grid per level (default bayes).")] = None,
    allow_test_tuning: Annotated[bool, typer.Option(
        "--allow-test-tuning",
        help="Without val records, fit on test (upstream reproductions only; marked †).")] = False,
    crossfit: Annotated[int | None, typer.Option(
        help="Without val records: K-fold cross-fitting on test (honest alternative).")] = None,
    ablate: Annotated[str | None, typer.Option(
        help="Comma-separated: loo, subsets, greedy.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    ci_rows: Annotated[int | None, typer.Option(
        help="Subsets ablation: rows given CIs (default 10).")] = None,
    subset_weights: Annotated[str | None, typer.Option(
        help="Subsets ablation: refit (weights re-fitted on every subset, default) or "
        "restricted (the fitted weights restricted to each subset).")] = None,
    input_seed: Annotated[int | None, typer.Option(
        help="Only fuse input records trained with this seed.")] = None,
    results: ResultsOption = None,
) -> None:
    """Fuse a method's stream records: fit weights on val, score test, store fused records."""
    from slrbench.fusion import default_options, fuse_from_store
    from slrbench.fusion.ablation import DEFAULT_CI_ROWS
    from slrbench.fusion.report import print_outcome
    from slrbench.fusion.strategies import DEFAULT_TRIALS

    bootstrap_settings = bootstrap_config(bootstrap)
    ablations = split_list(ablate, "--ablate") or []
    if ci_rows is not None and ci_rows < 0:
        raise SlrbenchError(f"--ci-rows: found {ci_rows}, expected 0 or more")
    for name, value in (("--ci-rows", ci_rows), ("--subset-weights", subset_weights)):
        if value is not None and "subsets" not in ablations:
            raise SlrbenchError(f"{name}: given, but only the subsets ablation uses it; "
                                "expected it with --ablate subsets")
    given = {"--seed": seed, "--trials": trials, "--grid": grid, "--level-search": level_search,
             "--groups": groups}
    group_table = parse_groups(groups)
    recipe = given_recipe(parse_weights(weights), weights_chosen_on, strategy, space,
                          group_table)
    options = default_options(
        method, dataset, strategy="fixed" if recipe else strategy, space=space,
        seed=0 if seed is None else seed,
        trials=DEFAULT_TRIALS if trials is None else trials, grid=parse_grid(grid),
        level_search=level_search or "bayes", allow_test_tuning=allow_test_tuning,
        crossfit=crossfit, groups=group_table, recipe=recipe)
    options.check()
    options.check_given([name for name, value in given.items() if value is not None])
    outcome = fuse_from_store(
        open_store(results), method, dataset, options,
        streams=split_list(streams, "--streams"), input_seed=input_seed, ablate=ablations,
        bootstrap=bootstrap_settings, ci_rows=DEFAULT_CI_ROWS if ci_rows is None else ci_rows,
        subset_weights=subset_weights or "refit")
    print_outcome(outcome, console)


def given_recipe(weights: dict[str, float] | None, chosen_on: str | None, strategy: str | None,
                 space: str | None, groups: dict[str, tuple[str, ...]] | None,
                 ) -> FusionRecipe | None:
    """The fixed-weight recipe of --weights (a published ensemble for any method, imported
    ones included); weights chosen on the reported split keep their †."""
    from slrbench.methods.base import FusionRecipe

    if weights is None:
        if chosen_on is not None:
            raise SlrbenchError("--weights-chosen-on: given without --weights; expected it "
                                "only with --weights")
        return None
    if strategy not in (None, "fixed"):
        raise SlrbenchError(f"--weights with --strategy {strategy}: found both; expected "
                            "--weights alone (it means --strategy fixed)")
    chosen = chosen_on or "unknown"
    if chosen not in ("val", "test", "unknown"):
        raise SlrbenchError(f"--weights-chosen-on: found {chosen!r}; expected val, test or "
                            "unknown")
    text = ",".join(f"{name}={value:g}" for name, value in weights.items())
    return FusionRecipe(strategy="fixed", score_space=space or "logits",
                        weights={"default": weights},
                        source=f"--weights {text} (chosen on {chosen})",
                        test_tuned=chosen == "test", groups=groups)
