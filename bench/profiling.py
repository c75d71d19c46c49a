"""`slrbench profile`: what a method costs (docs/evaluation.md#efficiency). Per distinct model of
a method's streams: trainable parameters, GFLOPs per sample at the preset's input shape
(torch's FLOP counter, inference length), training and inference samples per second (median of
timed steps after a warm-up, at an explicit thread count), and peak memory.

Profiles are stored as JSON beside the records (`<results>/profiles/`), with the machine, the
thread count and the code version, and the report shows them in its efficiency columns.
"""

from __future__ import annotations

import platform
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from slrbench.datasets.base import DatasetSpec
from slrbench.methods.base import MethodAdapter, SolverAdapter
from slrbench.store.atomic import atomic_write_json
from slrbench.store.provenance import config_sha256, environment, git_info, utc_now
from slrbench.training.compute import torch_threads
from slrbench.training.loop import count_parameters

PROFILES_DIR = "profiles"
PROFILE_VERSION = 1


@dataclass(frozen=True)
class ProfileRequest:
    method: MethodAdapter
    preset: str
    spec: DatasetSpec  # resolves the configuration (input shape, recipe)
    num_classes: int  # the dataset's K (sets the head)
    dataset: str
    device: torch.device
    threads: int = 1
    steps: int = 5  # timed steps after one warm-up step


def profile(request: ProfileRequest) -> dict[str, Any]:
    """The profile of every distinct model among the method's training units; every head of a
    multi-head unit points to the unit's profile (they are one network)."""
    streams: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}  # model identity -> first stream profiled with it
    adapter = request.method
    with torch_threads(request.threads):
        for unit in adapter.spec.training_units():
            config = adapter.resolve_config(request.preset, request.spec, unit, {})
            first, *others = adapter.heads(config)
            identity = config_sha256({"model": config.get("model"), "data": {
                k: v for k, v in config.get("data", {}).items() if k != "stream"}})
            if identity in seen:
                streams[first] = {"same_as": seen[identity]}
            else:
                seen[identity] = first
                streams[first] = _profile_stream(request, config)
            # Streams an earlier stage stored come from a smaller model: not this profile.
            staged = {s for stage in adapter.stages(config) for s in stage.stores.values()} \
                if not isinstance(adapter, SolverAdapter) else set()
            streams.update({head: {"same_as": first} for head in others if head not in staged})
    return {
        "profile_version": PROFILE_VERSION,
        "method": adapter.spec.name, "preset": request.preset,
        "dataset": request.dataset, "num_classes": request.num_classes,
        "device": str(request.device), "torch_threads": request.threads,
        "steps": request.steps, "streams": streams,
        "machine": {"processor": platform.processor() or platform.machine(),
                    "system": platform.platform()},
        "env": environment(str(request.device)), **git_info(Path(__file__).resolve().parent),
        "measured_at": utc_now(),
    }


def _profile_stream(request: ProfileRequest, config: dict[str, Any]) -> dict[str, Any]:
    """One training unit's network: the last stage's loss for a training step, every head at
    prediction (the adapter's own inputs, `MethodAdapter.example_inputs`)."""
    adapter = request.method
    if isinstance(adapter, SolverAdapter):
        return _profile_solver(request)
    train_batch = int(config["train"]["batch_size"])
    model = adapter.build_model(config, request.num_classes).to(request.device)
    stage = adapter.stages(config)[-1]

    def inputs(batch: int, train: bool) -> Any:
        return adapter.example_inputs(config, batch, train, request.device)

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        adapter.predict_heads(model, inputs(1, False), config)
    flops = counter.get_total_flops()

    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    targets = torch.randint(0, request.num_classes, (train_batch,), device=request.device)
    batch = inputs(train_batch, True)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = adapter.training_loss(model, batch, targets, 0, config, stage)
        loss.backward()
        optimizer.step()

    model.train()
    train_s = _median_seconds(train_step, request)
    eval_batch = inputs(train_batch, False)
    model.eval()

    def infer_step() -> None:
        with torch.inference_mode():
            adapter.predict_heads(model, eval_batch, config)

    infer_s = _median_seconds(infer_step, request)
    return {
        "params": count_parameters(model),
        "gflops_per_sample": round(flops / 1e9, 4),
        "input": {**adapter.describe_inputs(config), "batch": train_batch},
        "train_samples_per_s": round(train_batch / train_s, 2),
        "infer_samples_per_s": round(train_batch / infer_s, 2),
        "peak_memory_mb": _peak_memory_mb(request.device),
    }


def _profile_solver(request: ProfileRequest) -> dict[str, Any]:
    """A linear head over fixed features: parameters and FLOPs are closed-form; no epochs."""
    from slrbench.methods.linear_features import FeatureConfig, feature_dim

    dim = feature_dim(FeatureConfig())
    return {"params": (dim + 1) * request.num_classes,
            "gflops_per_sample": round(2 * dim * request.num_classes / 1e9, 6),
            "input": {"features": dim}, "train_samples_per_s": None,
            "infer_samples_per_s": None, "peak_memory_mb": None,
            "note": "fitted by a solver in seconds; time the fit with `slrbench run`"}


def _median_seconds(step: Any, request: ProfileRequest) -> float:
    step()  # warm-up: allocations and kernel selection
    times = []
    for _ in range(request.steps):
        if request.device.type == "cuda":
            torch.cuda.synchronize(request.device)
        tic = time.perf_counter()
        step()
        if request.device.type == "cuda":
            torch.cuda.synchronize(request.device)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def _peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak allocated by torch on the device; CPU: the process's peak resident set."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def profile_path(results: Path, method: str, preset: str, dataset: str, device: str) -> Path:
    name = f"{method}-{preset}-{dataset}-{device.replace(':', '')}.json"
    return Path(results) / PROFILES_DIR / name


def store_profile(results: Path, data: dict[str, Any]) -> Path:
    path = profile_path(results, data["method"], data["preset"], data["dataset"], data["device"])
    return atomic_write_json(path, data)


def load_profiles(results: Path) -> list[dict[str, Any]]:
    import json

    folder = Path(results) / PROFILES_DIR
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged profile only loses its columns, never the report
        if isinstance(data, dict) and data.get("profile_version") == PROFILE_VERSION:
            out.append(data)
    return out


def stream_profile(profiles: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any] | None:
    """The profile row of a record's model (same method, preset and number of classes), or
    None where none was measured (fused rows, imports, other presets)."""
    for data in profiles:
        if (data.get("method"), data.get("preset"), data.get("num_classes")) != (
                meta.get("method"), meta.get("preset"), meta.get("num_classes")):
            continue
        row = (data.get("streams") or {}).get(meta.get("stream"))
        if isinstance(row, dict) and "same_as" in row:
            row = data["streams"].get(row["same_as"])
        if isinstance(row, dict):
            return row
    return None


def fused_profile(profiles: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any] | None:
    """A fused record runs all its input streams: GFLOPs add up, and so do the seconds per
    sample (throughput 1 / sum of 1 / throughput). None unless every input was profiled."""
    inputs = (meta.get("fusion") or {}).get("inputs") or []
    # One forward pass per network: heads of one checkpoint (a multi-head unit) run once.
    networks = {item.get("checkpoint_sha256") or i: item for i, item in enumerate(inputs)
                if item.get("split") == meta.get("split")}
    rows = [stream_profile(profiles, {**meta, "stream": item.get("stream")})
            for item in networks.values()]
    if not rows or any(row is None for row in rows):
        return None
    known = [r for r in rows if r is not None]

    def throughput(key: str) -> float | None:
        seconds = 0.0
        for row in known:
            value = row.get(key)
            if not isinstance(value, (int, float)) or value <= 0:
                return None  # a solver-fitted input has no throughput
            seconds += 1.0 / float(value)
        return round(1.0 / seconds, 2)

    return {"gflops_per_sample": round(sum(float(r["gflops_per_sample"]) for r in known), 4),
            "train_samples_per_s": throughput("train_samples_per_s"),
            "infer_samples_per_s": throughput("infer_samples_per_s")}
