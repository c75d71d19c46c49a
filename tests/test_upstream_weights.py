"""Upstream SL-GCN checkpoints onto the native model: every upstream tensor has its place, the
einsum weight becomes a 1x1 convolution, the constants are checked, code-carrying files are
refused, and `run --init --epochs 0` scores the imported weights exactly like the originals."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.graph import layout_adjacency
from slrbench.methods.slgcn import PRESETS, SLGCN
from slrbench.methods.upstream_weights import DSTA_WEIGHTS, SLGCN_WEIGHTS, from_upstream
from slrbench.store import RecordStore
from slrbench.training.loop import load_strict

LAYOUT = "samslr_27"
# Upstream's names (jackyjsy/CVPR21Chal-SLR, SL-GCN/model/decouple_gcn_attn.py), written out
# here as facts, independently of the module's own table: native part -> upstream part.
_UPSTREAM_PARTS = [
    (r"^input_norm\.bn\.", "data_bn."), (r"^fc\.", "fc."),
    (r"^gcn\.decouple_a$", "gcn1.DecoupleA"), (r"^gcn\.bn0\.", "gcn1.bn0."),
    (r"^gcn\.bn\.", "gcn1.bn."), (r"^gcn\.down\.", "gcn1.down."),
    (r"^attention\.", ""), (r"^tcn\.0\.", "tcn1.conv."), (r"^tcn\.1\.", "tcn1.bn."),
    (r"^residual\.0\.", "residual.conv."), (r"^residual\.1\.", "residual.bn."),
]


def upstream_like(model: SLGCN, prefix: str = "module.") -> dict[str, torch.Tensor]:
    """The state dict upstream's code would save for the same weights (DataParallel prefix,
    einsum weight, constant identities and adjacency)."""
    out: dict[str, torch.Tensor] = {}
    stages = 0
    for name, tensor in model.state_dict().items():
        stage = re.match(r"^stages\.(\d+)\.(.+)$", name)
        rest, head = (stage.group(2), f"l{int(stage.group(1)) + 1}.") if stage else (name, "")
        stages = max(stages, int(stage.group(1)) + 1) if stage else stages
        if rest == "gcn.linear.weight":
            out[f"{head}gcn1.Linear_weight"] = tensor[:, :, 0, 0].t().clone()
            continue
        if rest == "gcn.linear.bias":
            out[f"{head}gcn1.Linear_bias"] = tensor.reshape(1, -1, 1, 1).clone()
            continue
        for pattern, replacement in _UPSTREAM_PARTS:
            if re.match(pattern, rest):
                out[head + re.sub(pattern, replacement, rest)] = tensor.clone()
                break
        else:
            raise AssertionError(f"no upstream name for {name}")
    adjacency = torch.as_tensor(layout_adjacency(LAYOUT), dtype=torch.float32)
    for i in range(1, stages + 1):
        width = out[f"l{i}.gcn1.bn.weight"].shape[0]
        out[f"l{i}.gcn1.eyes"] = torch.eye(27).expand(width, 27, 27).clone()
        out[f"l{i}.A"] = adjacency.sum(0)
    return {prefix + k: v for k, v in out.items()}


@pytest.fixture(scope="module")
def paper() -> SLGCN:
    torch.manual_seed(0)
    model = SLGCN(226, LAYOUT, PRESETS["paper"])
    with torch.no_grad():  # non-trivial values where upstream initialises with constants
        for name, p in model.named_parameters():
            if name.endswith(("conv_ta.weight", "fc2c.weight", "gcn.bn.weight",
                              "gcn.linear.bias")):
                p.normal_(0, 0.1)
    return model.eval()


def test_upstream_names_and_shapes_map_onto_the_paper_model(paper: SLGCN) -> None:
    state = upstream_like(paper)
    # facts of the upstream layout
    assert state["module.l1.gcn1.Linear_weight"].shape == (3, 192)
    assert state["module.l1.gcn1.Linear_bias"].shape == (1, 192, 1, 1)
    assert state["module.l5.residual.conv.weight"].shape == (128, 64, 1, 1)
    assert not any(k.startswith("module.l1.residual") for k in state)  # l1 has no residual
    assert state["module.data_bn.weight"].shape == (81,) and len(state) == 342
    native = SLGCN(226, LAYOUT, PRESETS["paper"]).eval()
    load_strict(native, from_upstream(SLGCN_WEIGHTS, state, "upstream.pt"), "upstream.pt")
    x = torch.randn(2, 3, 40, 27, 1, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(native(x, 1.0), paper(x, 1.0))


@pytest.mark.parametrize("damage, needle", [
    ("drop", "without a value"),
    ("extra", "is not part of slgcn's upstream model"),
    ("graph", "is not the summed adjacency of layout samslr_27"),
    ("eyes", "is not a stack of identities"),
    ("classes", "fc.weight has shape (226, 256); expected (100, 256)"),
])
def test_foreign_or_damaged_state_dicts_are_refused(paper: SLGCN, damage: str,
                                                    needle: str) -> None:
    state = upstream_like(paper, prefix="")
    if damage == "drop":
        del state["l3.tcn1.conv.weight"]
    elif damage == "extra":
        state["l3.gcn1.PA"] = torch.zeros(3, 27, 27)  # a 2s-AGCN tensor, say
    elif damage == "graph":
        state["l2.A"] = torch.ones(27, 27)
    elif damage == "eyes":
        state["l2.gcn1.eyes"][0, 0, 1] = 1.0
    target = SLGCN(100 if damage == "classes" else 226, LAYOUT, PRESETS["paper"])
    with pytest.raises(SlrbenchError, match=re.escape(needle)):
        load_strict(target, from_upstream(SLGCN_WEIGHTS, state, "x.pt"), "x.pt")


def test_a_checkpoint_that_runs_code_is_refused(cli, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"l1.gcn1.DecoupleA": Payload()}, evil)
    code, _, err = cli("import-checkpoint", str(evil), "--method", "slgcn", "--dataset", "autsl",
                       "--out", str(tmp_path / "n.pt"))
    assert code == 2 and "refused to load" in err and "system" in err, err
    assert not marker.exists() and not (tmp_path / "n.pt").exists()
    plain = tmp_path / "plain.pt"
    torch.save([1, 2, 3], plain)
    code, _, err = cli("import-checkpoint", str(plain), "--method", "slgcn", "--dataset",
                       "autsl", "--out", str(tmp_path / "n.pt"))
    assert code == 2 and "expected a dict of parameter names to tensors" in err, err


def test_imported_weights_are_evaluated_like_the_originals(cli, tmp_path: Path) -> None:
    torch.manual_seed(5)
    original = SLGCN(20, LAYOUT, PRESETS["tiny"])
    torch.save({"model": original.state_dict()}, tmp_path / "native.pt")
    torch.save(upstream_like(original), tmp_path / "upstream.pt")
    code, out, err = cli("import-checkpoint", str(tmp_path / "upstream.pt"), "--method", "slgcn",
                         "--dataset", "synthsign-tiny", "--preset", "tiny", "--out",
                         str(tmp_path / "imported.pt"))
    assert code == 0 and "K=20" in out, err
    scores = {}
    for name in ("native", "imported"):
        results = tmp_path / f"r-{name}"
        code, _, err = cli("run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--streams",
                           "j", "--init", str(tmp_path / f"{name}.pt"), "--epochs", "0",
                           "--bootstrap", "0", "--quiet", "--results", str(results))
        assert code == 0, err
        record = RecordStore(results).latest_record(split="test")
        assert record.meta["selection_split"] == "unknown" and record.meta["timings"][
            "epochs"] == 0
        scores[name] = record.scores
    np.testing.assert_array_equal(scores["native"], scores["imported"])
    code, _, err = cli("run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--streams",
                       "j", "--epochs", "0", "--results", str(tmp_path / "r"))
    assert code == 2 and "--epochs" in err, err  # no training and no weights: refused


# DSTA-SLR's names (hulianyuyy/DSTA-SLR, model/fstgan.py), native -> upstream, as facts.
_DSTA_PARTS = [
    (r"^input_norm\.bn\.", "data_bn."), (r"^fc\.", "fc."),
    (r"^spatial\.edge_gate$", "san.edge_weight"), (r"^spatial\.down\.", "san.down."),
    (r"^spatial\.bn0\.", "san.bn0."), (r"^spatial\.bn\.", "san.bn."),
    (r"^spatial\.query_key\.", "san.in_nets."), (r"^spatial\.norm_attention\.", "san.norm1."),
    (r"^spatial\.norm_mlp\.", "san.norm2."), (r"^spatial\.mlp\.0\.", "san.mlp.fc1."),
    (r"^spatial\.mlp\.2\.", "san.mlp.fc2."),
    (r"^spatial\.edge\.prototypes$", "san.Edge_conv.edge_features"),
    (r"^spatial\.edge\.norm\.", "san.Edge_conv.norm1."),
    (r"^spatial\.edge\.transform\.", "san.Edge_conv.transform."),
    (r"^attention\.", ""), (r"^residual\.depthwise\.", "residual.pool.net.0."),
    (r"^residual\.pointwise\.", "residual.pool.net.1."), (r"^residual\.bn\.", "residual.bn."),
]
_DSTA_RESHAPED = {
    "spatial.static_graph": ("san.attention0s", lambda t: t[None]),
    "spatial.head_scales": ("san.alphas", lambda t: t.reshape(1, -1, 1, 1)),
    "spatial.proj.weight": ("san.Linear_weight", lambda t: t[:, :, 0, 0].t()),
    "spatial.proj.bias": ("san.Linear_bias", lambda t: t.reshape(1, -1, 1, 1)),
    "spatial.edge.scales": ("san.Edge_conv.alphas", lambda t: t.reshape(1, 1, -1, 1)),
}


def dsta_upstream_like(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    blocks = set()
    for name, tensor in model.state_dict().items():
        stage = re.match(r"^stages\.(\d+)\.(.+)$", name)
        rest, head = (stage.group(2), f"layers.{stage.group(1)}.") if stage else (name, "")
        if stage:
            blocks.add(stage.group(1))
        tcn = re.match(r"^tcns\.(\d)\.branches\.(\d+)\.([01])\.(.+)$", rest)
        if tcn:
            which = ["tcn", "tcn2", "tcn3"][int(tcn.group(1))]
            part = "conv" if tcn.group(3) == "0" else "bn"
            out[f"{head}{which}.branches.{tcn.group(2)}.{part}.{tcn.group(4)}"] = tensor.clone()
        elif rest in _DSTA_RESHAPED:
            upstream, shape = _DSTA_RESHAPED[rest]
            out[head + upstream] = shape(tensor).clone()
        else:
            pattern, replacement = next(p for p in _DSTA_PARTS if re.match(p[0], rest))
            out[head + re.sub(pattern, replacement, rest)] = tensor.clone()
    adjacency = torch.as_tensor(layout_adjacency(LAYOUT), dtype=torch.float32).sum(0)
    out.update({f"layers.{b}.A": adjacency for b in blocks})
    return {"module." + k: v for k, v in out.items()}


def test_dsta_upstream_state_dicts_map_onto_the_native_model(cli, tmp_path: Path) -> None:
    from slrbench.methods.dsta import DSTA
    from slrbench.methods.dsta import PRESETS as DSTA_PRESETS

    torch.manual_seed(2)
    original = DSTA(20, LAYOUT, DSTA_PRESETS["tiny"]).eval()
    state = dsta_upstream_like(original)
    assert state["module.layers.0.san.Linear_weight"].shape[0] == 3  # (C_in, C_out) einsum
    native = DSTA(20, LAYOUT, DSTA_PRESETS["tiny"]).eval()
    load_strict(native, from_upstream(DSTA_WEIGHTS, state, "dsta.pt"), "dsta.pt")
    x = torch.randn(2, 3, 32, 27, 1, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(native(x, 1.0), original(x, 1.0))
    torch.save(state, tmp_path / "dsta.pt")
    code, out, err = cli("import-checkpoint", str(tmp_path / "dsta.pt"), "--method", "dsta",
                         "--dataset", "synthsign-tiny", "--preset", "tiny", "--out",
                         str(tmp_path / "native.pt"))
    assert code == 0 and "dsta/tiny, K=20" in out, err
    state["module.layers.1.A"] = torch.zeros(27, 27)
    with pytest.raises(SlrbenchError, match="is not the summed adjacency"):
        from_upstream(DSTA_WEIGHTS, state, "dsta.pt")
