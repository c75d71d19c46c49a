"""Released upstream weights onto slrbench's native models (docs/importing.md#checkpoints).

SL-GCN's repositories (jackyjsy/CVPR21Chal-SLR, SAM-SLR-v2) save `model.state_dict()`, often
through `nn.DataParallel` (keys prefixed `module.`). Their names map one to one onto
`slrbench.methods.slgcn.SLGCN`, with two reshapes: the GCN's einsum weight `Linear_weight`
(C_in, 3 C_out) becomes the 1x1 convolution `gcn.linear.weight` (3 C_out, C_in, 1, 1), and
`Linear_bias` (1, 3 C_out, 1, 1) becomes its bias. The constant tensors upstream keeps as
parameters (`gcn1.eyes`: identities, `A`: the summed adjacency) carry no learned state; they
are checked, not copied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.graph import layout_adjacency

_LAYER = re.compile(r"^l(\d+)\.(.+)$")
# upstream name inside a TCN_GCN_unit -> native name inside `stages.<i>`
_UNIT_NAMES: tuple[tuple[str, str], ...] = (
    ("gcn1.DecoupleA", "gcn.decouple_a"),
    ("gcn1.Linear_weight", "gcn.linear.weight"),
    ("gcn1.Linear_bias", "gcn.linear.bias"),
    ("gcn1.bn0.", "gcn.bn0."),
    ("gcn1.bn.", "gcn.bn."),
    ("gcn1.down.", "gcn.down."),
    ("conv_sa.", "attention.conv_sa."),
    ("conv_ta.", "attention.conv_ta."),
    ("fc1c.", "attention.fc1c."),
    ("fc2c.", "attention.fc2c."),
    ("tcn1.conv.", "tcn.0."),
    ("tcn1.bn.", "tcn.1."),
    ("residual.conv.", "residual.0."),
    ("residual.bn.", "residual.1."),
)
_CONSTANTS = ("gcn1.eyes", "A")  # checked, not copied
_TOP_NAMES = (("data_bn.", "input_norm.bn."), ("fc.", "fc."))


def slgcn_from_upstream(state: Mapping[str, torch.Tensor], layout: str, source: str
                        ) -> dict[str, torch.Tensor]:
    """Native `SLGCN` state dict (for keypoint `layout`) from an upstream SL-GCN state dict."""
    state = _strip_prefix(state)
    native: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        layer = _LAYER.match(name)
        if layer is None:
            native[_rename(name, _TOP_NAMES, name, source)] = tensor
            continue
        index, rest = int(layer.group(1)) - 1, layer.group(2)
        if rest in _CONSTANTS:
            _check_constant(rest, tensor, name, layout, source)
            continue
        target = f"stages.{index}.{_rename(rest, _UNIT_NAMES, name, source)}"
        if rest == "gcn1.Linear_weight":  # einsum (C_in, 3 C_out) -> 1x1 conv (3 C_out, C_in)
            tensor = tensor.t().contiguous()[:, :, None, None]
        elif rest == "gcn1.Linear_bias":
            tensor = tensor.reshape(-1)
        native[target] = tensor
    return native


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop `nn.DataParallel`'s `module.` prefix when every key carries it."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _rename(name: str, table: tuple[tuple[str, str], ...], full: str, source: str) -> str:
    for old, new in table:
        if name == old or (old.endswith(".") and name.startswith(old)):
            return new + name[len(old):]
    raise SlrbenchError(f"{source}: tensor '{full}' is not part of SL-GCN's upstream model; "
                        "expected the state dict of jackyjsy/CVPR21Chal-SLR's decouple_gcn_attn")


def _check_constant(rest: str, tensor: torch.Tensor, name: str, layout: str,
                    source: str) -> None:
    if rest == "gcn1.eyes":
        expected = torch.eye(tensor.shape[-1], dtype=tensor.dtype).expand_as(tensor)
        what = "a stack of identities"
    else:  # A: the layout's adjacency, summed over the three subsets
        expected = torch.as_tensor(layout_adjacency(layout), dtype=tensor.dtype).sum(0)
        what = f"the summed adjacency of layout {layout}"
    if tensor.shape != expected.shape or not torch.allclose(tensor, expected, atol=1e-6):
        raise SlrbenchError(f"{source}: {name} is not {what}; expected upstream's constant "
                            "(another skeleton graph, or a damaged or foreign checkpoint)")


def upstream_state(path: str, source: str) -> dict[str, torch.Tensor]:
    """The tensor dict of a released checkpoint, read with `weights_only=True` (tensors and
    plain containers only; anything else is refused, nothing is run). A dict holding the
    weights under `state_dict` or `model` is unwrapped."""
    import pickle

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
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()):
        raise SlrbenchError(f"{source}: found {type(data).__name__} of other things; expected "
                            "a dict of parameter names to tensors (a state dict)")
    return data


def native_slgcn(num_classes: int, preset: str) -> torch.nn.Module:
    from slrbench.methods.slgcn import PRESETS, SLGCN

    if preset not in PRESETS:
        raise SlrbenchError(f"--preset: unknown preset '{preset}' for slgcn; expected one of "
                            f"{', '.join(PRESETS)}")
    return SLGCN(num_classes, SLGCN_LAYOUT, PRESETS[preset])


SLGCN_LAYOUT = "samslr_27"
