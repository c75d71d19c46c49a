"""Training: the shared loop (`loop`: device, AMP, seeding, per-epoch selection on val,
checkpoints, resume) and the runner behind `slrbench run` (`runner`: one method's streams on a
dataset, predictions of val and test, records into the store).
"""

from slrbench.training.loop import TrainConfig, Trainer, seed_everything, select_device
from slrbench.training.runner import RunRequest, StreamOutcome, run

__all__ = ["RunRequest", "StreamOutcome", "TrainConfig", "Trainer", "run", "seed_everything",
           "select_device"]
