"""SFT (or DPO) training on dataset snapshots (TRL SFTTrainer / DPOTrainer), checkpointed to the object store.

    from warriorflow.training import train, record_training_run, training_run_id_for

See ``warriorflow.training.sft`` for the run's steps; ``spec`` holds the pure parts, ``dpo`` the DPO pieces.
"""

from __future__ import annotations

from warriorflow.training.sft import model_prefix, record_training_run, train, training_run_id_for

__all__ = ["model_prefix", "record_training_run", "train", "training_run_id_for"]
