"""SFT of the target model on a snapshot with TRL's SFTTrainer (WarriorCoder step 6), or DPO on its
preference pairs with TRL's DPOTrainer (``training.method: dpo``; the DPO pieces are in ``dpo.py``).

``train(cfg, snapshot_id)`` is the whole run, for either method, and the same call in a GPU pod
(``warriorflow train --snapshot ID``, launched per GPU by torchrun/accelerate with DeepSpeed ZeRO-3) or on a laptop CPU:

1. The run id is derived from the method, the snapshot and the training config, so a rerun is the same
   run. A run whose model is already published returns at once.
2. The snapshot is downloaded and every file checked against its manifest.
3. If the run has published checkpoints, the latest complete one is downloaded and training resumes
   from it: the global step, optimizer, scheduler, RNG state and the loss log carry on.
4. Every checkpoint the Trainer saves is published to ``training/<run_id>/checkpoints/checkpoint-N/``
   (manifest last) before training goes on; older ones beyond ``keep_checkpoints`` are deleted.
5. The final model directory (safetensors, config, tokenizer with its chat template) is published to
   ``models/<run_id>/`` with the run's record in its manifest: method, effective config, snapshot id, losses,
   the process segments (where each process started and stopped: resumes after a kill). The local
   checkpoints are then deleted: the published ones are the durable copies.
6. The ``training_runs`` row is written from that manifest (``record_training_run``), unless this is a
   worker process (``WARRIORFLOW_ROLE=worker``: a pod never opens the rating store; the writer task
   records the run afterwards) or a rank other than 0.

torch, transformers, trl and datasets are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warriorflow import __version__
from warriorflow.config import Config, TrainingSettings
from warriorflow.config.paths import TRAINING_DIR_ENV
from warriorflow.errors import ConfigError, StoreError
from warriorflow.method.progress import Progress
from warriorflow.models import base_model
from warriorflow.store.objects import MANIFEST_NAME, ObjectStore, join_key, publish, read_manifest
from warriorflow.store.rating_store import ROLE_ENV, RatingStore
from warriorflow.store.snapshots import dataset_file, download_snapshot, latest_snapshot_id, read_snapshot_manifest
from warriorflow.training import checkpoints, dpo
from warriorflow.training.spec import (
    accumulation_steps,
    dpo_arguments,
    losses_from_log,
    sft_arguments,
    to_training_example,
    training_config_hash,
    training_run_id,
)

log = logging.getLogger(__name__)
MODEL_KIND = "warriorflow.trained-model"
NOT_IN_MODEL = {"training_args.bin"}  # a pickle of the arguments; the manifest records them as JSON
# what a checkpoint holds besides the model directory: optimizer, scheduler, RNG, trainer state, DeepSpeed shards
DATASET = {"sft": "sft", "dpo": "preferences"}  # the snapshot dataset each method trains on
CHECKPOINT_ONLY = re.compile(r"^(optimizer\.pt|scheduler\.pt|rng_state.*\.pth|trainer_state\.json|"
                             r"training_args\.bin|latest|zero_to_\w+\.py|global_step\d+/.*)$")


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    snapshot_id: str
    settings: TrainingSettings
    config_hash: str
    base_model: str                  # identity (expert:..., dir:..., hub:...)
    chat_template: str | None        # text of training.chat_template, if set
    deepspeed: dict | None           # the parsed DeepSpeed config, if set
    deepspeed_path: str | None


def model_prefix(run_id: str) -> str:
    return join_key("models", run_id)


def _settings_file(cfg: Config, value: str, key: str) -> Path:
    p = Path(value).expanduser()
    p = p if p.is_absolute() else cfg.settings_file.parent / p
    if not p.is_file():
        raise ConfigError(f"training.{key}", f"file {p} not found", "paths are relative to the settings file")
    return p


def plan(cfg: Config, snapshot_id: str, overrides: dict[str, Any] | None = None) -> RunPlan:
    """The run for this snapshot and the effective training settings (``overrides`` replace settings keys)."""
    ts = cfg.settings.training
    if overrides:
        ts = TrainingSettings.model_validate({**ts.model_dump(), **overrides})
    template = ds = ds_path = None
    if ts.chat_template:
        template = _settings_file(cfg, ts.chat_template, "chat_template").read_text(encoding="utf-8")
    if ts.deepspeed:
        path = _settings_file(cfg, ts.deepspeed, "deepspeed")
        try:
            ds = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(str(path), f"is not valid JSON: {exc}", "fix the DeepSpeed config") from None
        ds_path = str(path)
    identity = base_model.identity(cfg, ts)
    chash = training_config_hash(ts, identity, template, ds)
    return RunPlan(training_run_id(snapshot_id, chash, ts.method), snapshot_id, ts, chash, identity, template, ds,
                   ds_path)


def training_run_id_for(cfg: Config, snapshot_id: str, overrides: dict[str, Any] | None = None) -> str:
    """The run id ``train`` would use, without training (for the DAG: record after a pod finished)."""
    return plan(cfg, snapshot_id, overrides).run_id


def work_root(cfg: Config) -> Path:
    """Where runs keep their local files (snapshot, checkpoints, final model): ``$WARRIORFLOW_TRAINING_DIR`` (a
    pod's checkpoint volume), else ``<home>/training``."""
    where = os.environ.get(TRAINING_DIR_ENV)
    return Path(where).expanduser() if where else cfg.path("training")


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _barrier() -> None:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------ the record


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _mark(cfg: Config, p: RunPlan, status: str, error: str | None = None) -> None:
    """Best effort: the row says running/failed. A busy store must not stop (or fail) a training run."""
    try:
        with RatingStore(cfg.duckdb_path) as store:
            store.upsert("training_runs", [{
                "training_run_id": p.run_id, "snapshot_id": p.snapshot_id, "base_model": p.base_model,
                "config": _json({"training": p.settings.model_dump(mode="json"), "base_model": p.base_model,
                                 "training_config_hash": p.config_hash}),
                "status": status, "training_config_hash": p.config_hash, "error": error}],
                key=["training_run_id"], update=["status", "error"])
    except StoreError as exc:
        log.warning("could not mark training run %s %s: %s", p.run_id, status, exc)


def record_training_run(cfg: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> dict[str, Any]:
    """Write the ``training_runs`` row (status done) from the published model's manifest; return the row."""
    m = read_manifest(objects, model_prefix(run_id))
    if m.get("kind") != MODEL_KIND:
        raise StoreError(objects.uri(model_prefix(run_id)), f"is not a trained model (kind {m.get('kind')!r})",
                         "check the run id")
    finished = datetime.fromisoformat(m["finished_at"].replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    row = {"training_run_id": run_id, "snapshot_id": m["snapshot_id"], "base_model": m["base_model"],
           "config": _json(m["config"]), "status": "done", "output_uri": objects.uri(model_prefix(run_id)),
           "losses": _json(m["losses"]), "finished_at": finished, "training_config_hash": m["training_config_hash"],
           "global_step": m["global_step"], "segments": _json(m["segments"]), "error": None}
    store.upsert("training_runs", [row], key=["training_run_id"],
                 update=[k for k in row if k != "training_run_id"])
    return row


def published_model(objects: ObjectStore, run_id: str) -> dict[str, Any] | None:
    key = join_key(model_prefix(run_id), MANIFEST_NAME)
    return read_manifest(objects, model_prefix(run_id)) if objects.exists(key) else None


# ------------------------------------------------------------------------------------------ training


def _checkpoint_callback(objects: ObjectStore, p: RunPlan, segments: list[dict], from_step: int, is_main: bool,
                         progress: Progress):
    from transformers import TrainerCallback

    class PublishCheckpoints(TrainerCallback):
        """After each save: wait for every rank's files, then rank 0 publishes the checkpoint, manifest last."""

        def on_save(self, args, state, control, **kwargs):
            _barrier()
            if is_main:
                step = state.global_step
                directory = Path(args.output_dir) / f"checkpoint-{step}"
                uri = checkpoints.publish_checkpoint(objects, p.run_id, directory, step, {
                    "snapshot_id": p.snapshot_id, "training_config_hash": p.config_hash,
                    "segments": [*segments, {"from_step": from_step, "to_step": step}],
                    "losses": losses_from_log(state.log_history)})
                pruned = checkpoints.prune_checkpoints(objects, p.run_id, p.settings.keep_checkpoints)
                progress(f"checkpoint {step} published: {uri}" + (f" (deleted {pruned})" if pruned else ""))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if is_main and logs and "loss" in logs:
                progress(f"step {state.global_step}/{state.max_steps}: loss {float(logs['loss']):.4f}")

    return PublishCheckpoints()


def _dataset(p: RunPlan, data_file: Path, cache_dir: Path):
    """The method's training rows: sft examples (prompt/completion or messages), or dpo preference pairs."""
    if p.settings.method == "dpo":
        return dpo.preference_dataset(data_file, cache_dir, p.settings, p.snapshot_id)
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(data_file), split="train", cache_dir=str(cache_dir))
    return ds.map(lambda ex: to_training_example(ex, p.settings.loss_on), remove_columns=ds.column_names)


def _tokenizer(model: str, p: RunPlan):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if p.chat_template:
        tokenizer.chat_template = p.chat_template
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"training.base_model {p.settings.base_model!r}", "has no chat template",
                          "set training.chat_template to a Jinja file (e.g. templates/sft_plain.jinja)")
    return tokenizer


def _effective_config(p: RunPlan, model_path: str, world_size: int) -> dict[str, Any]:
    import torch
    import transformers
    import trl

    accum = accumulation_steps(p.settings, world_size)
    return {"training": p.settings.model_dump(mode="json"), "base_model": p.base_model, "base_model_path": model_path,
            "training_config_hash": p.config_hash, "world_size": world_size, "gradient_accumulation_steps": accum,
            "global_batch_size": p.settings.per_device_batch_size * world_size * accum, "deepspeed": p.deepspeed,
            "chat_template_overridden": p.chat_template is not None,
            "versions": {"warriorflow": __version__, "trl": trl.__version__, "transformers": transformers.__version__,
                         "torch": torch.__version__}}


def _trainer(p: RunPlan, model_path: str, tokenizer, dataset, out: Path, world_size: int, callback):
    """The method's TRL trainer."""
    if p.settings.method == "dpo":
        args = dpo_arguments(p.settings, str(out), world_size, p.deepspeed_path)
        return dpo.trainer(model_path, args, dataset, tokenizer, callback)
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**sft_arguments(p.settings, str(out), world_size, p.deepspeed_path))
    return SFTTrainer(model=model_path, args=args, train_dataset=dataset, processing_class=tokenizer,
                      callbacks=[callback])


def _run(cfg: Config, p: RunPlan, objects: ObjectStore, data_file: str, progress: Progress) -> None:
    from accelerate import PartialState

    rank, world_size = _rank()
    is_main = rank == 0
    workdir = work_root(cfg) / p.run_id
    out = workdir / "trainer"
    state = PartialState()
    with state.main_process_first():  # rank 0 downloads and converts; the others then find the files
        latest = checkpoints.latest_checkpoint(objects, p.run_id)
        resume_dir = out / f"checkpoint-{latest[0]}" if latest else None
        if is_main:
            for stale in out.glob("checkpoint-*"):  # local leftovers of a killed process: the store decides
                shutil.rmtree(stale, ignore_errors=True)
            if latest:
                progress(f"resuming run {p.run_id} from its published checkpoint {latest[0]}")
                checkpoints.download_checkpoint(objects, p.run_id, latest[0], resume_dir)
        data_dir = download_snapshot(objects, p.snapshot_id, workdir / "snapshot")
        model_path = base_model.resolve(cfg, p.settings)
    segments = list(latest[1].get("segments", [])) if latest else []
    from_step = latest[0] if latest else 0
    if latest and from_step >= p.settings.max_steps:  # killed after the last checkpoint, before the model was out
        if is_main:
            state = json.loads((resume_dir / "trainer_state.json").read_text())
            files = {n: f for n, f in checkpoints.local_files(resume_dir).items() if not CHECKPOINT_ONLY.match(n)}
            _publish_model(objects, p, files, state["log_history"], from_step, segments, model_path, world_size,
                           progress)
        return

    with state.main_process_first():  # one process writes the datasets cache, the others read it
        dataset = _dataset(p, data_dir / data_file, workdir / "hf-datasets")
    tokenizer = _tokenizer(model_path, p)
    callback = _checkpoint_callback(objects, p, segments, from_step, is_main, progress)
    trainer = _trainer(p, model_path, tokenizer, dataset, out, world_size, callback)
    what = "preference pairs" if p.settings.method == "dpo" else "examples"
    if len(trainer.train_dataset) == 0:  # TRL's preparation dropped every example: say why, not a sampler error
        raise ConfigError(f"snapshot {p.snapshot_id}", f"none of its {dataset.num_rows} {what} is left to train on "
                          f"after tokenization (training.max_seq_length={p.settings.max_seq_length})",
                          "raise training.max_seq_length (prompts longer than it leave no response tokens)")
    progress(f"training {p.run_id} ({p.settings.method}): {p.settings.max_steps} steps on {dataset.num_rows} "
             f"{what} of snapshot {p.snapshot_id}" + (f", from step {from_step}" if from_step else ""))
    trainer.train(resume_from_checkpoint=str(resume_dir) if resume_dir else None)

    final = workdir / "final"
    trainer.save_model(str(final))  # every rank: ZeRO-3 gathers the weights
    if not is_main:
        return
    tokenizer.save_pretrained(str(final))
    files = {n: f for n, f in checkpoints.local_files(final).items() if n not in NOT_IN_MODEL}
    step = trainer.state.global_step
    _publish_model(objects, p, files, trainer.state.log_history, step,
                   [*segments, {"from_step": from_step, "to_step": step}], model_path, world_size, progress)
    # the local checkpoints (GBs with optimizer state) duplicate the published ones, which alone a rerun resumes from
    shutil.rmtree(out, ignore_errors=True)


def _publish_model(objects: ObjectStore, p: RunPlan, files: dict[str, Path], log_history: list[dict], step: int,
                   segments: list[dict], model_path: str, world_size: int, progress: Progress) -> None:
    uri = publish(objects, model_prefix(p.run_id), files, {
        "kind": MODEL_KIND, "training_run_id": p.run_id, "method": p.settings.method, "snapshot_id": p.snapshot_id,
        "base_model": p.base_model, "training_config_hash": p.config_hash,
        "config": _effective_config(p, model_path, world_size),
        "losses": losses_from_log(log_history), "global_step": step, "segments": segments, "finished_at": _now()})
    progress(f"model published: {uri}")


def train(cfg: Config, snapshot_id: str | None = None, *, objects: ObjectStore | None = None,
          record: bool | None = None, overrides: dict[str, Any] | None = None,
          progress: Progress = log.info) -> str:
    """Train (or resume, or return) the run for ``snapshot_id`` (default: the latest); return its run id.

    ``record``: write the ``training_runs`` row (default: yes, except in worker processes)."""
    if objects is None:
        from warriorflow.store.objects import open_objects

        objects = open_objects(cfg)
    snapshot_id = snapshot_id or latest_snapshot_id(objects)
    manifest = read_snapshot_manifest(objects, snapshot_id)  # a missing snapshot fails before anything else
    p = plan(cfg, snapshot_id, overrides)
    data_file = dataset_file(manifest, DATASET[p.settings.method])  # format 1: sft only
    if p.settings.method == "dpo":
        dpo.check_pairs(manifest)
    rank, _ = _rank()
    if record is None:
        record = os.environ.get(ROLE_ENV) != "worker"
    record = record and rank == 0

    if published_model(objects, p.run_id) is None:
        if record:
            _mark(cfg, p, "running")
        try:
            _run(cfg, p, objects, data_file, progress)
        except Exception as exc:
            if record:
                _mark(cfg, p, "failed", error=f"{type(exc).__name__}: {exc}"[:4000])
            raise
    else:
        progress(f"run {p.run_id} is already trained: {objects.uri(model_prefix(p.run_id))}")
    if record:
        with RatingStore(cfg.duckdb_path) as store:
            record_training_run(cfg, store, objects, p.run_id)
    return p.run_id
