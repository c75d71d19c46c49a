"""The native SL-GCN, DSTA-SLR and LGF-SLR hand-stream models compute the same function as the
plain reference implementations in benchmarks/reference_models.py (docs/PERFORMANCE.md): same
state-dict keys and shapes, same outputs, input gradients, parameter gradients and BatchNorm
statistics, in training mode (drops active, same seed) and in evaluation mode.

float64 shows the math is identical; float32 that the rounding stays at float32 level. Zero- or
1e-6-initialised parts (gates, the edge branch, the GCN's output BN) are set to non-trivial values
first, so that every branch contributes to the output.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from slrbench.methods.blocks.gcn import DropBlockTemporal, DropGraphSpatial, DropGraphTemporal
from slrbench.methods.blocks.graph import layout_adjacency
from slrbench.methods.dsta import DSTA
from slrbench.methods.dsta import PRESETS as DSTA_PRESETS
from slrbench.methods.slgcn import PRESETS as SLGCN_PRESETS
from slrbench.methods.slgcn import SLGCN

REFERENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_models.py"
CASES = {  # case -> (family, layout)
    "slgcn": ("slgcn", "samslr_27"),
    "dsta": ("dsta", "samslr_27"),
    "lgf-hand10": ("slgcn", "hand10_left"),
}
N, T, K, KEEP_PROB = 4, 24, 10, 0.7


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference_models", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_pair(case: str, reference: ModuleType, dtype: torch.dtype) -> tuple[nn.Module, nn.Module]:
    family, layout = CASES[case]
    torch.manual_seed(0)
    native: nn.Module
    if family == "dsta":
        native = DSTA(K, layout, DSTA_PRESETS["tiny"])
        ref = reference.ReferenceDSTA(K, layout, DSTA_PRESETS["tiny"])
    else:
        native = SLGCN(K, layout, SLGCN_PRESETS["tiny"])
        ref = reference.ReferenceSLGCN(K, layout, SLGCN_PRESETS["tiny"])
    native.to(dtype)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in native.named_parameters():
            if name.endswith(("attention.conv_ta.weight", "attention.fc2c.weight")):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif name.endswith(("gcn.bn.weight", "spatial.bn.weight")):
                p.fill_(1.0)
            elif name.endswith("edge_gate"):
                p.fill_(0.5)
            elif name.endswith(("decouple_a", "static_graph")):
                p.add_(0.05 * torch.rand(p.shape, generator=gen, dtype=torch.float64))
    ref.to(dtype).load_state_dict(native.state_dict())  # strict: same keys and shapes
    return native, ref


def run(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, train: bool) -> dict:
    model.train(train)
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    torch.manual_seed(7)
    out = model(x, KEEP_PROB)
    nn.functional.cross_entropy(out, labels).backward()
    result = {"out": out.detach(), "grad input": x.grad, "rng": torch.rand(4)}
    result |= {f"grad {n}": p.grad for n, p in model.named_parameters() if p.grad is not None}
    result |= {f"buffer {n}": b.clone() for n, b in model.named_buffers() if "running" in n}
    return result


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", list(CASES))
def test_native_matches_reference(case: str, train: bool, dtype: torch.dtype,
                                  reference: ModuleType) -> None:
    native, ref = build_pair(case, reference, dtype)
    v = 10 if CASES[case][1].startswith("hand10") else 27
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(N, 3, T, v, 1, generator=gen, dtype=torch.float64).to(dtype)
    labels = torch.randint(0, K, (N,), generator=gen)
    if not train:  # realistic running statistics, the same in both models
        with torch.no_grad():
            native.train()(x, 1.0)
        ref.load_state_dict(native.state_dict())
    a, b = run(native, x, labels, train), run(ref, x, labels, train)
    assert a.keys() == b.keys()
    assert torch.equal(a.pop("rng"), b.pop("rng"))  # the drops drew the same random numbers
    if train:  # the drops were active: the output differs from a run without them
        with torch.no_grad():
            torch.manual_seed(7)
            assert not torch.allclose(native(x, 1.0), a["out"])
    # Biases in front of a training-mode BN have a gradient of exactly zero in exact arithmetic:
    # what remains is rounding, so the absolute tolerance scales with the largest gradient.
    scale = max(t.abs().max().item() for k, t in a.items() if k.startswith("grad"))
    rtol, atol = (1e-10, 1e-12) if dtype == torch.float64 else (1e-4, 1e-5)
    for key in a:
        tol = atol * scale if key.startswith("grad") else atol
        torch.testing.assert_close(b[key], a[key], rtol=rtol, atol=tol, msg=key)
    if dtype == torch.float32:  # the logits at the usual float32 tolerance
        torch.testing.assert_close(b["out"], a["out"], rtol=1e-5, atol=1e-6)


def test_fused_drops_match_dropgraph_then_dropblock() -> None:
    adjacency = torch.from_numpy(layout_adjacency("samslr_27").sum(0)).double()
    x = torch.randn(6, 8, 50, 27, dtype=torch.float64).requires_grad_()
    graph, time = DropGraphSpatial(27).train(), DropBlockTemporal(41).train()
    fused = DropGraphTemporal(27, 41).train()
    torch.manual_seed(3)
    expected = time(graph(x, 0.5, adjacency), 0.5)
    rng_expected = torch.rand(4)
    torch.manual_seed(3)
    got = fused(x, 0.5, adjacency)
    assert torch.equal(torch.rand(4), rng_expected)  # same draws, same order
    assert torch.equal(got == 0, expected == 0) and (got == 0).any()  # same joints and frames
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0.0)
    assert fused.eval()(x, 0.5, adjacency) is x
    assert fused.train()(x, 1.0, adjacency) is x
