"""Building blocks shared by the method families: graph adjacencies (`graph`) and the
SL-GCN-family layers (`gcn`: STC attention, DropGraph, DropBlockT, input norm, the model frame).
"""

from slrbench.methods.blocks.gcn import count_trainable_parameters

__all__ = ["count_trainable_parameters"]
