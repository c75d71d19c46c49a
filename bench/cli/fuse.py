"""`slrbench fuse`: fuse a method's stream records (`slrbench.fusion`)."""

from __future__ import annotations

from typing import Annotated

import typer

from slrbench.cli.common import ResultsOption, bootstrap_config, console, open_store, split_list
from slrbench.errors import MAX_GRID_STEPS, SlrbenchError


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
    if ci_rows is not None and "subsets" not in ablations:
        raise SlrbenchError("--ci-rows: given, but only the subsets ablation uses it; expected "
                            "it with --ablate subsets")
    given = {"--seed": seed, "--trials": trials, "--grid": grid, "--level-search": level_search}
    options = default_options(
        method, dataset, strategy=strategy, space=space, seed=0 if seed is None else seed,
        trials=DEFAULT_TRIALS if trials is None else trials, grid=parse_grid(grid),
        level_search=level_search or "bayes", allow_test_tuning=allow_test_tuning,
        crossfit=crossfit)
    options.check()
    options.check_given([name for name, value in given.items() if value is not None])
    outcome = fuse_from_store(
        open_store(results), method, dataset, options,
        streams=split_list(streams, "--streams"), input_seed=input_seed, ablate=ablations,
        bootstrap=bootstrap_settings, ci_rows=DEFAULT_CI_ROWS if ci_rows is None else ci_rows)
    print_outcome(outcome, console)
