"""DPO on a snapshot's preference pairs with TRL's DPOTrainer: only what differs from SFT.

The run itself (its id, the snapshot download, checkpoints published and resumed, the model published and
recorded) is ``sft.py``'s, for either method. The pairs are the snapshot's ``preferences`` dataset: TRL's
conversational format (prompt [user], chosen and rejected [assistant]) with provenance columns, of which
only ``margin`` is read here (``training.min_margin`` drops near ties).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warriorflow.config import TrainingSettings
from warriorflow.errors import ConfigError, StoreError

DPO_COLUMNS = ["prompt", "chosen", "rejected"]


def check_pairs(manifest: dict[str, Any]) -> None:
    """A DPO run needs preference pairs: say so before anything is downloaded (the manifest lists the
    ``preferences`` dataset: format 2)."""
    if manifest["datasets"]["preferences"]["rows"] == 0:
        counts = manifest["counts"]
        raise StoreError(f"snapshot {manifest.get('snapshot_id')}",
                         f"has no preference pairs to train DPO on ({counts.get('battles', 0)} battles, "
                         f"{counts.get('preferences_skipped_ties', 0)} of them with equal final scores)",
                         "train it with --method sft, or snapshot again after more (decisive) battles")


def preference_dataset(data_file: Path, cache_dir: Path, settings: TrainingSettings, snapshot_id: str):
    """The snapshot's pairs as DPOTrainer takes them, without those below ``training.min_margin``."""
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(data_file), split="train", cache_dir=str(cache_dir))
    n = ds.num_rows
    if settings.min_margin is not None:
        ds = ds.filter(lambda ex: ex["margin"] >= settings.min_margin)
        if ds.num_rows == 0:
            raise ConfigError("training.min_margin", f"{settings.min_margin} leaves none of the {n} preference "
                                                     f"pairs of snapshot {snapshot_id}",
                              "lower it or unset it (the margins are final-score differences in (0, 1])")
    return ds.select_columns(DPO_COLUMNS)


def trainer(model_path: str, arguments: dict[str, Any], dataset, tokenizer, callback):
    from trl import DPOConfig, DPOTrainer

    return DPOTrainer(model=model_path, args=DPOConfig(**arguments), train_dataset=dataset,
                      processing_class=tokenizer, callbacks=[callback])
