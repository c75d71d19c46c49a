"""Training: the shared loop (`loop`: device, AMP, seeding, per-epoch selection on val,
checkpoints, resume), how many trainings run at once with how many threads (`compute`), and
the runner behind `slrbench run` (`runner`: plan the streams of one or more methods, skip what
is stored, train identical configurations once, in parallel worker processes, write records),
and several processes training one stream under torchrun (`distributed`: rank batches,
gradient averaging, synchronised BatchNorm; docs/distributed.md).
"""

from slrbench.training.compute import Compute
from slrbench.training.loop import TrainConfig, Trainer, seed_everything, select_device
from slrbench.training.runner import RunRequest, StreamOutcome, run, run_all

__all__ = ["Compute", "RunRequest", "StreamOutcome", "TrainConfig", "Trainer", "run", "run_all",
           "seed_everything", "select_device"]
