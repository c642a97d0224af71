"""What a training run is, as pure functions: its id, its effective config, the TRL arguments, the examples.

A run's id is derived from the method, the snapshot id and the hash of the training config (the settings
that change the result, the base model's identity, the chat template and DeepSpeed file contents), so
rerunning the same command is the same run: it resumes or returns, never starts over. An sft run hashes
exactly the settings it had before DPO existed (the method and the DPO keys are left out), so its id is
unchanged; a dpo run hashes them all and its id starts ``dpo-``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from warriorflow.config import TrainingSettings
from warriorflow.errors import ConfigError

# Settings that change how a run is carried out, not what it produces: left out of the run's hash.
OPERATIONAL = ("save_steps", "keep_checkpoints")
# Settings only a DPO run reads: an sft run's hash leaves them out (and the method), so sft run ids stay as they were.
DPO_ONLY = ("method", "dpo_beta", "dpo_loss", "min_margin")


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def training_config_hash(settings: TrainingSettings, base_model_identity: str, chat_template: str | None,
                         deepspeed: dict | None) -> str:
    skip = OPERATIONAL + (DPO_ONLY if settings.method == "sft" else ())
    body = {k: v for k, v in settings.model_dump(mode="json").items() if k not in skip}
    return _sha({"training": body, "base_model": base_model_identity, "chat_template": chat_template,
                 "deepspeed": deepspeed})


def training_run_id(snapshot_id: str, config_hash: str, method: str = "sft") -> str:
    """``<method>-<16 hex>`` (``sft-...``, ``dpo-...``): the same snapshot and training config always give the
    same run."""
    return f"{method}-" + _sha({"snapshot": snapshot_id, "config": config_hash})[:16]


def accumulation_steps(settings: TrainingSettings, world_size: int) -> int:
    """Gradient accumulation: from global_batch_size when set (it must divide evenly), else as configured."""
    if settings.global_batch_size is None:
        return settings.gradient_accumulation_steps
    per_step = settings.per_device_batch_size * world_size
    if settings.global_batch_size % per_step:
        raise ConfigError(
            "training.global_batch_size",
            f"{settings.global_batch_size} is not a multiple of per_device_batch_size x devices "
            f"({settings.per_device_batch_size} x {world_size} = {per_step})",
            "pick a global batch that divides evenly, e.g. per_device_batch_size 8 on 8 GPUs for 512")
    return settings.global_batch_size // per_step


def sft_arguments(settings: TrainingSettings, output_dir: str, world_size: int,
                  deepspeed_path: str | None) -> dict[str, Any]:
    """Keyword arguments for trl.SFTConfig (TRL 1.16 / transformers 5)."""
    return {
        "output_dir": output_dir,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.per_device_batch_size,
        "gradient_accumulation_steps": accumulation_steps(settings, world_size),
        "learning_rate": settings.learning_rate,
        "weight_decay": settings.weight_decay,
        "warmup_steps": settings.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the steps
        "lr_scheduler_type": settings.lr_scheduler,
        "max_length": settings.max_seq_length,
        "completion_only_loss": settings.loss_on == "response",
        "logging_steps": settings.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": settings.save_steps,
        "save_total_limit": 1,  # locally: published checkpoints are the durable ones
        "bf16": settings.precision == "bf16",
        "fp16": settings.precision == "fp16",
        "use_cpu": settings.device == "cpu",
        "gradient_checkpointing": settings.gradient_checkpointing,
        "deepspeed": deepspeed_path,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def dpo_arguments(settings: TrainingSettings, output_dir: str, world_size: int,
                  deepspeed_path: str | None) -> dict[str, Any]:
    """Keyword arguments for trl.DPOConfig (TRL 1.16): the SFT run's arguments, the DPO loss and its beta."""
    args = sft_arguments(settings, output_dir, world_size, deepspeed_path)
    del args["completion_only_loss"]  # DPO's loss is on the completions by construction
    return {**args, "beta": settings.dpo_beta, "loss_type": [settings.dpo_loss]}


def to_training_example(example: dict[str, Any], loss_on: str) -> dict[str, Any]:
    """A snapshot row -> what SFTTrainer takes: conversational prompt/completion (loss on the response only)
    or the whole ``messages`` conversation."""
    messages = example["messages"]
    if loss_on == "all":
        return {"messages": messages}
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError(f"example {example.get('instruction_id')}: the last message is not the assistant's")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def losses_from_log(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The logged training losses, one per logged step, from a Trainer's log_history."""
    out = []
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            out.append({"step": int(entry["step"]), "loss": float(entry["loss"]),
                        "learning_rate": entry.get("learning_rate"), "grad_norm": entry.get("grad_norm")})
    return out
