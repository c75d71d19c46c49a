"""Released upstream weights onto slrbench's native models (docs/importing.md#checkpoints).

SL-GCN's repositories (jackyjsy/CVPR21Chal-SLR, SAM-SLR-v2) and DSTA-SLR's (hulianyuyy/DSTA-SLR)
save `model.state_dict()`, often through `nn.DataParallel` (keys prefixed `module.`). Their
names map one to one onto `slrbench.methods.slgcn.SLGCN` and `slrbench.methods.dsta.DSTA`, with
a few reshapes: the einsum weight `Linear_weight` (C_in, C_out) becomes a 1x1 convolution
(C_out, C_in, 1, 1) and `Linear_bias` (1, C_out, 1, 1) its bias; DSTA's per-head and per-edge
scales lose their singleton axes. Constant tensors upstream keeps as parameters (SL-GCN's
`gcn1.eyes`: identities; both families' `A`: the summed adjacency) carry no learned state; they
are checked, not copied.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.graph import layout_adjacency

Tensor = torch.Tensor
KEYPOINT_LAYOUT = "samslr_27"  # the 27-joint graph both upstream repositories train on


def _as_conv(weight: Tensor) -> Tensor:  # einsum (C_in, C_out) -> 1x1 conv (C_out, C_in, 1, 1)
    return weight.t().contiguous()[:, :, None, None]


def _flat(tensor: Tensor) -> Tensor:
    return tensor.reshape(-1)


@dataclass(frozen=True)
class WeightLayout:
    """How one upstream model's state dict is named, relative to the native model's."""

    family: str
    upstream: str  # repository and file, named in errors
    layer: re.Pattern[str]  # a per-block key: (block number, rest)
    first_block: int  # the number upstream gives its first block (SL-GCN l1, DSTA layers.0)
    block_names: tuple[tuple[str, str], ...]  # upstream rest -> native rest in stages.<i>
    top_names: tuple[tuple[str, str], ...]  # keys outside the blocks
    reshapes: Mapping[str, Callable[[Tensor], Tensor]]  # upstream rest -> native shape
    constants: tuple[str, ...]  # upstream rests that are checked, not copied
    # rests renamed by a pattern (numbered parts), tried before `block_names`
    patterns: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = ()


SLGCN_WEIGHTS = WeightLayout(
    family="slgcn",
    upstream="jackyjsy/CVPR21Chal-SLR SL-GCN/model/decouple_gcn_attn.py",
    layer=re.compile(r"^l(\d+)\.(.+)$"),
    first_block=1,
    block_names=(
        ("gcn1.DecoupleA", "gcn.decouple_a"), ("gcn1.Linear_weight", "gcn.linear.weight"),
        ("gcn1.Linear_bias", "gcn.linear.bias"), ("gcn1.bn0.", "gcn.bn0."),
        ("gcn1.bn.", "gcn.bn."), ("gcn1.down.", "gcn.down."),
        ("conv_sa.", "attention.conv_sa."), ("conv_ta.", "attention.conv_ta."),
        ("fc1c.", "attention.fc1c."), ("fc2c.", "attention.fc2c."),
        ("tcn1.conv.", "tcn.0."), ("tcn1.bn.", "tcn.1."),
        ("residual.conv.", "residual.0."), ("residual.bn.", "residual.1."),
    ),
    top_names=(("data_bn.", "input_norm.bn."), ("fc.", "fc.")),
    reshapes={"gcn1.Linear_weight": _as_conv, "gcn1.Linear_bias": _flat},
    constants=("gcn1.eyes", "A"),
)

def _dsta_tcn(match: re.Match[str]) -> str:
    """DSTA's three temporal convolutions: tcn, tcn2, tcn3 -> tcns.0 .. 2 (conv/bn -> 0/1)."""
    which = int(match.group(1) or 1) - 1
    part = "0" if match.group(3) == "conv" else "1"
    return f"tcns.{which}.branches.{match.group(2)}.{part}.{match.group(4)}"


DSTA_WEIGHTS = WeightLayout(
    family="dsta",
    upstream="hulianyuyy/DSTA-SLR model/fstgan.py",
    layer=re.compile(r"^layers\.(\d+)\.(.+)$"),
    first_block=0,
    block_names=(
        ("san.attention0s", "spatial.static_graph"), ("san.alphas", "spatial.head_scales"),
        ("san.Linear_weight", "spatial.proj.weight"), ("san.Linear_bias", "spatial.proj.bias"),
        ("san.edge_weight", "spatial.edge_gate"), ("san.down.", "spatial.down."),
        ("san.bn0.", "spatial.bn0."), ("san.bn.", "spatial.bn."),
        ("san.in_nets.", "spatial.query_key."), ("san.norm1.", "spatial.norm_attention."),
        ("san.norm2.", "spatial.norm_mlp."), ("san.mlp.fc1.", "spatial.mlp.0."),
        ("san.mlp.fc2.", "spatial.mlp.2."),
        ("san.Edge_conv.edge_features", "spatial.edge.prototypes"),
        ("san.Edge_conv.alphas", "spatial.edge.scales"),
        ("san.Edge_conv.norm1.", "spatial.edge.norm."),
        ("san.Edge_conv.transform.", "spatial.edge.transform."),
        ("conv_sa.", "attention.conv_sa."), ("conv_ta.", "attention.conv_ta."),
        ("fc1c.", "attention.fc1c."), ("fc2c.", "attention.fc2c."),
        ("residual.pool.net.0.", "residual.depthwise."),
        ("residual.pool.net.1.", "residual.pointwise."), ("residual.bn.", "residual.bn."),
    ),
    top_names=(("data_bn.", "input_norm.bn."), ("fc.", "fc.")),
    reshapes={"san.attention0s": lambda t: t[0], "san.alphas": _flat,
              "san.Linear_weight": _as_conv, "san.Linear_bias": _flat,
              "san.Edge_conv.alphas": _flat},
    constants=("A",),
    patterns=((re.compile(r"^tcn(\d?)\.branches\.(\d+)\.(conv|bn)\.(.+)$"), _dsta_tcn),),
)
WEIGHT_LAYOUTS = {layout.family: layout for layout in (SLGCN_WEIGHTS, DSTA_WEIGHTS)}


def from_upstream(weights: WeightLayout, state: Mapping[str, Tensor], source: str
                  ) -> dict[str, Tensor]:
    """The native state dict of `weights.family` from an upstream state dict."""
    state = _strip_prefix(state)
    native: dict[str, Tensor] = {}
    for name, tensor in state.items():
        block = weights.layer.match(name)
        if block is None:
            native[_rename(name, weights.top_names, name, weights, source)] = tensor
            continue
        index, rest = int(block.group(1)) - weights.first_block, block.group(2)
        if rest in weights.constants:
            _check_constant(rest, tensor, name, source)
            continue
        native[f"stages.{index}.{_block_name(rest, name, weights, source)}"] = \
            weights.reshapes.get(rest, lambda t: t)(tensor)
    return native


def _block_name(rest: str, full: str, weights: WeightLayout, source: str) -> str:
    for pattern, rename in weights.patterns:
        match = pattern.match(rest)
        if match is not None:
            return rename(match)
    return _rename(rest, weights.block_names, full, weights, source)


def _strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop `nn.DataParallel`'s `module.` prefix when every key carries it."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _rename(name: str, table: tuple[tuple[str, str], ...], full: str, weights: WeightLayout,
            source: str) -> str:
    for old, new in table:
        if name == old or (old.endswith(".") and name.startswith(old)):
            return new + name[len(old):]
    raise SlrbenchError(f"{source}: tensor '{full}' is not part of {weights.family}'s upstream "
                        f"model; expected the state dict of {weights.upstream}")


def _check_constant(rest: str, tensor: Tensor, name: str, source: str) -> None:
    if rest.endswith("eyes"):
        expected = torch.eye(tensor.shape[-1], dtype=tensor.dtype).expand_as(tensor)
        what = "a stack of identities"
    else:  # A: the layout's adjacency, summed over the three subsets
        expected = torch.as_tensor(layout_adjacency(KEYPOINT_LAYOUT), dtype=tensor.dtype).sum(0)
        what = f"the summed adjacency of layout {KEYPOINT_LAYOUT}"
    if tensor.shape != expected.shape or not torch.allclose(tensor, expected, atol=1e-6):
        raise SlrbenchError(f"{source}: {name} is not {what}; expected upstream's constant "
                            "(another skeleton graph, or a damaged or foreign checkpoint)")


def upstream_state(path: str, source: str) -> dict[str, Tensor]:
    """The tensor dict of a released checkpoint, read with `weights_only=True` (tensors and
    plain containers only; anything else is refused, nothing is run). A dict holding the
    weights under `state_dict` or `model` is unwrapped."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL (\S+)", str(exc))
        asks = f"it asks for '{named.group(1)}'" if named else "it holds more than tensors"
        raise SlrbenchError(f"{source}: refused to load: {asks}; expected a plain dict of "
                            "tensors (nothing in it was run)") from None
    except (RuntimeError, EOFError) as exc:
        raise SlrbenchError(f"{source}: not a torch checkpoint ({str(exc)[:80]}); expected a "
                            "file written by torch.save") from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not data or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in data.items()):
        raise SlrbenchError(f"{source}: found {type(data).__name__} of other things; expected "
                            "a dict of parameter names to tensors (a state dict)")
    return data


def native_model(family: str, num_classes: int, preset: str) -> torch.nn.Module:
    """The native model an upstream checkpoint of `family` is loaded into."""
    from slrbench.methods import dsta, slgcn

    presets: Mapping[str, object] = slgcn.PRESETS if family == "slgcn" else dsta.PRESETS
    if preset not in presets:
        raise SlrbenchError(f"--preset: unknown preset '{preset}' for {family}; expected one of "
                            f"{', '.join(presets)}")
    if family == "slgcn":
        return slgcn.SLGCN(num_classes, KEYPOINT_LAYOUT, slgcn.PRESETS[preset])
    return dsta.DSTA(num_classes, KEYPOINT_LAYOUT, dsta.PRESETS[preset])
