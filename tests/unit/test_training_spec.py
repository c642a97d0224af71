"""Training, the pure parts: run ids, batch arithmetic, TRL arguments, examples, checkpoints in a local store,
base-model resolution errors, the DeepSpeed ZeRO-3 file and the production (paper) settings."""

from __future__ import annotations

import json
import math

import pytest

from warriorflow.config import CONFIG_DIR, TrainingSettings, load_config
from warriorflow.errors import ConfigError, StoreError
from warriorflow.models import base_model
from warriorflow.store.objects import LocalObjectStore, join_key
from warriorflow.training import checkpoints, sft
from warriorflow.training.spec import (
    accumulation_steps,
    dpo_arguments,
    losses_from_log,
    sft_arguments,
    to_training_example,
    training_config_hash,
    training_run_id,
)

SID = "2026-11-22T06-00-00Z-1a2b3c4d"
# keys transformers' HfTrainerDeepSpeedConfig fills from the TrainingArguments / model ("auto")
AUTO_FILLED = {"train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
               "gradient_clipping", "bf16.enabled", "fp16.enabled", "zero_optimization.reduce_bucket_size",
               "zero_optimization.stage3_prefetch_bucket_size", "zero_optimization.stage3_param_persistence_threshold"}


def _hash(**changes) -> str:
    return training_config_hash(TrainingSettings(**changes), "expert:x:w:float32", None, None)


def test_run_id_is_derived_from_snapshot_and_config():
    base = training_run_id(SID, _hash())
    assert base == training_run_id(SID, _hash()) and base.startswith("sft-") and len(base) == 20
    assert training_run_id("2026-11-23T06-00-00Z-1a2b3c4d", _hash()) != base
    for change in ({"learning_rate": 2e-5}, {"max_steps": 5}, {"loss_on": "all"}, {"base_model": "other"}):
        assert training_run_id(SID, _hash(**change)) != base, change
    # operational settings do not make a new run
    assert training_run_id(SID, _hash(save_steps=7, keep_checkpoints=5)) == base
    ts = TrainingSettings()
    assert training_config_hash(ts, "dir:/a", None, None) != training_config_hash(ts, "dir:/b", None, None)
    assert training_config_hash(ts, "dir:/a", "{{x}}", None) != training_config_hash(ts, "dir:/a", None, None)
    assert training_config_hash(ts, "dir:/a", None, {"a": 1}) != training_config_hash(ts, "dir:/a", None, None)


def test_global_batch_sets_the_accumulation():
    assert accumulation_steps(TrainingSettings(per_device_batch_size=8, global_batch_size=512), 8) == 8
    assert accumulation_steps(TrainingSettings(per_device_batch_size=2, global_batch_size=8), 1) == 4
    assert accumulation_steps(TrainingSettings(gradient_accumulation_steps=3), 4) == 3
    with pytest.raises(ConfigError, match="not a multiple"):
        accumulation_steps(TrainingSettings(per_device_batch_size=3, global_batch_size=512), 8)


def test_sft_arguments_build_a_real_sft_config(tmp_path):
    from trl import SFTConfig

    ts = TrainingSettings(max_steps=448, warmup_ratio=0.2, device="cpu", max_seq_length=128)
    kwargs = sft_arguments(ts, str(tmp_path), world_size=1, deepspeed_path=None)
    args = SFTConfig(**kwargs)
    assert args.max_steps == 448 and args.learning_rate == 1e-5 and args.weight_decay == 3e-7
    assert args.get_warmup_steps(448) == math.ceil(0.2 * 448)
    assert args.max_length == 128 and args.completion_only_loss is True and not args.bf16 and args.use_cpu
    assert args.save_steps == 2 and args.save_strategy == "steps"
    assert sft_arguments(TrainingSettings(precision="bf16"), "o", 1, None)["bf16"] is True
    assert sft_arguments(TrainingSettings(loss_on="all"), "o", 1, None)["completion_only_loss"] is False


def test_sft_run_ids_are_unchanged_and_dpo_runs_hash_the_method_and_its_knobs():
    # the hash of the default sft settings as it was before training.method existed: existing runs keep their ids
    assert _hash() == "fe3f0443301392d4998459bc5ec5f3732a7355ec41ba11a21cb7677a00e3f655"
    assert training_run_id(SID, _hash()) == "sft-953078f0e9587902"
    assert _hash(dpo_beta=0.5, dpo_loss="ipo", min_margin=0.1) == _hash()  # sft reads none of them
    dpo = _hash(method="dpo")
    assert dpo != _hash() and training_run_id(SID, dpo, "dpo").startswith("dpo-")
    assert training_run_id(SID, dpo, "dpo")[4:] != training_run_id(SID, _hash())[4:]
    for change in ({"dpo_beta": 0.5}, {"dpo_loss": "ipo"}, {"min_margin": 0.1}):
        assert _hash(method="dpo", **change) != dpo, change


def test_dpo_arguments_build_a_real_dpo_config(tmp_path):
    from trl import DPOConfig

    ts = TrainingSettings(method="dpo", dpo_beta=0.25, dpo_loss="ipo", max_steps=8, device="cpu", max_seq_length=96)
    kwargs = dpo_arguments(ts, str(tmp_path), world_size=1, deepspeed_path=None)
    assert "completion_only_loss" not in kwargs
    args = DPOConfig(**kwargs)
    assert args.beta == 0.25 and args.loss_type == ["ipo"] and args.max_length == 96 and args.max_steps == 8
    assert args.use_cpu and args.seed == ts.seed and args.save_steps == ts.save_steps
    assert DPOConfig(**dpo_arguments(TrainingSettings(), "o", 1, None)).loss_type == ["sigmoid"]
    with pytest.raises(ValueError):
        TrainingSettings(method="ppo")


def test_dpo_needs_a_snapshot_with_preference_pairs(config):
    """A format-1 snapshot has no preferences; a snapshot whose battles all tied has none: both are named
    before anything is trained (and sft still trains on either)."""
    from click.testing import CliRunner

    from tests.sft_seed import publish_format1_snapshot, seed_arena
    from warriorflow.cli import main
    from warriorflow.stages.cycles import rate_and_select_gold
    from warriorflow.store import snapshots
    from warriorflow.store.objects import open_objects
    from warriorflow.store.rating_store import RatingStore

    objects = open_objects(config)
    with RatingStore(config.duckdb_path) as store:
        seed_arena(store)
        store.con.execute("UPDATE votes SET verdict = 'tie'")
        rate_and_select_gold(config, store, "ties")
        tied = snapshots.create_snapshot(config, store, objects).snapshot_id
    old = publish_format1_snapshot(objects, tied)
    with pytest.raises(StoreError, match="no preference pairs to train DPO on .*6 of them with equal final scores"):
        sft.train(config, tied, objects=objects, overrides={"method": "dpo"})
    with pytest.raises(StoreError, match="no 'preferences' dataset"):
        sft.train(config, old, objects=objects, overrides={"method": "dpo"})
    out = CliRunner().invoke(main, ["train", "--snapshot", tied, "--method", "dpo"])
    assert out.exit_code == 2 and "no preference pairs" in out.output and "--method sft" in out.output
    assert sft.plan(config, tied, {"method": "dpo"}).run_id.startswith("dpo-")
    assert sft.plan(config, old).run_id.startswith("sft-")


def test_examples_and_losses():
    ex = {"instruction_id": "i", "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    assert to_training_example(ex, "response") == {"prompt": ex["messages"][:1], "completion": ex["messages"][1:]}
    assert to_training_example(ex, "all") == {"messages": ex["messages"]}
    with pytest.raises(ValueError, match="not the assistant"):
        to_training_example({"messages": ex["messages"][:1]}, "response")
    log = [{"loss": 2.5, "step": 1, "learning_rate": 0.0, "grad_norm": 3.0}, {"eval_loss": 1.0, "step": 1},
           {"loss": 2.0, "step": 2}, {"train_runtime": 1.0, "step": 2}]
    assert [(x["step"], x["loss"]) for x in losses_from_log(log)] == [(1, 2.5), (2, 2.0)]


def test_checkpoints_publish_latest_prune_and_download(tmp_path):
    objects = LocalObjectStore(tmp_path / "store")
    for step in (2, 4, 6):
        d = tmp_path / f"checkpoint-{step}"
        (d / "global_step").mkdir(parents=True)
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (d / "global_step" / "shard.pt").write_bytes(bytes([step]) * 100)
        checkpoints.publish_checkpoint(objects, "run1", d, step, {"segments": [{"from_step": 0, "to_step": step}]})
    # an upload cut short by a kill: files, no manifest
    objects.put_bytes(join_key(checkpoints.checkpoint_prefix("run1", 8), "trainer_state.json"), b"{}")
    assert checkpoints.published_steps(objects, "run1") == [2, 4, 6]
    assert checkpoints.prune_checkpoints(objects, "run1", keep=2) == [2]
    assert checkpoints.published_steps(objects, "run1") == [4, 6]
    assert not list(objects.list(checkpoints.checkpoint_prefix("run1", 2) + "/"))
    step, manifest = checkpoints.latest_checkpoint(objects, "run1")
    assert step == 6 and manifest["segments"] == [{"from_step": 0, "to_step": 6}]
    out = checkpoints.download_checkpoint(objects, "run1", 6, tmp_path / "dl" / "checkpoint-6")
    assert (out / "global_step" / "shard.pt").read_bytes() == bytes([6]) * 100
    objects.put_bytes(join_key(checkpoints.checkpoint_prefix("run1", 4), "global_step/shard.pt"), b"damaged")
    with pytest.raises(StoreError, match="shard.pt.*fails its checksum"):
        checkpoints.download_checkpoint(objects, "run1", 4, tmp_path / "dl" / "checkpoint-4")
    assert not (tmp_path / "dl" / "checkpoint-4").exists()
    assert checkpoints.latest_checkpoint(objects, "other") is None


def test_base_model_identity(config, tmp_path):
    ts = config.settings.training
    assert base_model.identity(config, ts).startswith("expert:qwen2.5-coder-0.5b-instruct:")  # the embedded target
    (tmp_path / "m").mkdir()
    assert base_model.identity(config, ts.model_copy(update={"base_model": str(tmp_path / "m")})) == \
        f"dir:{(tmp_path / 'm').resolve()}"
    assert base_model.identity(config, ts.model_copy(update={"base_model": "org/model-1.5b"})) == "hub:org/model-1.5b"
    with pytest.raises(ConfigError, match="neither an expert"):
        base_model.identity(config, ts.model_copy(update={"base_model": "no such thing"}))
    with pytest.raises(ConfigError, match="no config.json"):
        base_model.resolve(config, ts.model_copy(update={"base_model": str(tmp_path / "m")}))


def test_plan_reads_chat_template_and_deepspeed_files(config, tmp_path):
    p = sft.plan(config, SID)
    assert p.run_id == sft.training_run_id_for(config, SID) and p.deepspeed is None and p.chat_template is None
    with_files = sft.plan(config, SID, {"chat_template": "templates/sft_plain.jinja",
                                        "deepspeed": "deepspeed_zero3.json"})
    assert "### Response:" in with_files.chat_template and with_files.deepspeed["zero_optimization"]["stage"] == 3
    assert with_files.run_id != p.run_id
    with pytest.raises(ConfigError, match="not found"):
        sft.plan(config, SID, {"deepspeed": "missing.json"})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        sft.plan(config, SID, {"deepspeed": str(bad)})


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_deepspeed_zero3_config():
    ds = json.loads((CONFIG_DIR / "deepspeed_zero3.json").read_text())
    flat = _flat(ds)
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["bf16"]["enabled"] == "auto" and "fp16" not in ds
    assert not {"offload_param", "offload_optimizer"} & set(ds["zero_optimization"])  # no offload
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True  # saveable final model
    assert "optimizer" not in ds and "scheduler" not in ds  # the Trainer's AdamW and schedule (lr, wd, warmup)
    autos = {k for k, v in flat.items() if v == "auto"}
    assert autos <= AUTO_FILLED and {"train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                                     "train_batch_size", "gradient_clipping", "bf16.enabled"} <= autos


def test_production_settings_are_the_papers():
    cfg = load_config(CONFIG_DIR / "production.example.yaml")
    ts = cfg.settings.training
    assert (ts.learning_rate, ts.weight_decay, ts.warmup_ratio, ts.global_batch_size, ts.max_steps) == \
        (1e-5, 3e-7, 0.2, 512, 448)
    assert ts.precision == "bf16" and ts.deepspeed == "deepspeed_zero3.json"
    assert accumulation_steps(ts, 8) * ts.per_device_batch_size * 8 == 512
    p = sft.plan(cfg, SID)
    assert p.base_model == "hub:deepseek-ai/deepseek-coder-6.7b-base" and p.deepspeed["zero_optimization"]["stage"] == 3


def test_plain_template_prompt_is_a_prefix_of_the_conversation():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)  # what transformers uses
    t = env.from_string((CONFIG_DIR / "templates" / "sft_plain.jinja").read_text())
    msgs = [{"role": "user", "content": "Add a and b."}, {"role": "assistant", "content": "def add(a, b): ..."}]
    prompt = t.render(messages=msgs[:1], add_generation_prompt=True, eos_token="</s>")
    full = t.render(messages=msgs, add_generation_prompt=False, eos_token="</s>")
    assert full.startswith(prompt) and prompt.endswith("### Response:\n") and "def add(a, b): ...</s>" in full


def test_embedded_settings_train_on_the_cpu(config):
    ts = config.settings.training
    assert ts.device == "cpu" and ts.precision == "fp32" and ts.max_steps <= 8 and ts.save_steps <= ts.max_steps
    assert ts.base_model in config.registry.names()
