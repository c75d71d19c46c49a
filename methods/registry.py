"""Name -> method adapter. Adapters are imported on demand so `slrbench methods` stays fast."""

from __future__ import annotations

import importlib

from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodAdapter

# name -> "module:class" inside slrbench.methods
_ADAPTERS: dict[str, str] = {
    "slgcn": "slgcn_adapter:SLGCNAdapter",
    "dsta": "dsta_adapter:DSTAAdapter",
    "lgf": "lgf_adapter:LGFAdapter",
    "linear": "linear_adapter:LinearAdapter",
    "camfuse": "camfuse_adapter:CAMFuseAdapter",
    "nla": "nla_adapter:NLAAdapter",
    "slfusion": "slfusion_adapter:SLFusionAdapter",
}
METHOD_NAMES: tuple[str, ...] = tuple(_ADAPTERS)
# `--method all` (the README main job): every method (each tiny preset fits its 2-minute share
# of the main job's budget, docs/PERFORMANCE.md).
MAIN_JOB_METHODS: tuple[str, ...] = METHOD_NAMES


def get_method(name: str) -> MethodAdapter:
    if name not in _ADAPTERS:
        raise SlrbenchError(
            f"--method: unknown method '{name}'; expected one of {', '.join(METHOD_NAMES)}"
        )
    module_name, class_name = _ADAPTERS[name].split(":")
    module = importlib.import_module(f"slrbench.methods.{module_name}")
    adapter: MethodAdapter = getattr(module, class_name)()
    return adapter
