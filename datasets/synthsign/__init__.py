"""SynthSign: the built-in procedural isolated-sign dataset.

Every sample is one continuous 3-D body motion (a sign composed from phonological parameters,
performed by a synthetic signer) observed three ways: COCO-WholeBody pose with detector
artefacts, rendered RGB frames, and two wrist IMUs. Deterministic from a seed, cached on disk
keyed by the hash of every parameter.

    from slrbench.datasets.synthsign import load_synthsign
    ds = load_synthsign(preset="tiny", seed=0)
    ds.pose("train"), ds.sensor("train"), ds.rgb("train", size=64, frames=16)
"""

from .config import GENERATOR_VERSION, PRESETS, SynthSignConfig
from .dataset import SynthSign, load_synthsign
from .imu import CHANNELS as SENSOR_CHANNELS
from .motion import Motion
from .phonology import ClassInfo

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "SENSOR_CHANNELS",
    "ClassInfo",
    "Motion",
    "SynthSign",
    "SynthSignConfig",
    "load_synthsign",
]
