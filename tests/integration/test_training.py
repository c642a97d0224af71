"""Real TRL training, on a tiny randomly initialised Llama (SmolLM2's tokenizer and chat template) so that
every step takes a moment: the published model, checkpoints and row; idempotent reruns; resuming from a
published checkpoint reproduces the uninterrupted run; worker processes leave the rating store alone;
the whole run against SeaweedFS; DPO on the snapshot's preference pairs, resumed the same way; a format-1
snapshot still trains as sft. The kill -9 test on the real SmolLM2 is in test_training_smollm2.py."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.sft_seed import PROBLEMS, publish_format1_snapshot, seed_and_rate
from warriorflow.errors import StoreError
from warriorflow.store import snapshots
from warriorflow.store.objects import S3ObjectStore, join_key, open_objects
from warriorflow.store.rating_store import RatingStore
from warriorflow.training import checkpoints, sft

pytestmark = pytest.mark.integration
MODEL_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}


@pytest.fixture(scope="module")
def tiny_model(smollm2_path, tmp_path_factory) -> Path:
    """A 2-layer, 32-wide Llama with SmolLM2's tokenizer (from its GGUF), saved as a Hugging Face directory."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = AutoTokenizer.from_pretrained(str(smollm2_path.parent), gguf_file=smollm2_path.name)
    assert tok.chat_template
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _overrides(tiny_model, **more) -> dict:
    return {"base_model": str(tiny_model), "max_steps": 4, "save_steps": 2, "keep_checkpoints": 1,
            "max_seq_length": 128, **more}


def _snapshot(cfg, objects=None) -> str:
    with RatingStore(cfg.duckdb_path) as store:
        seed_and_rate(cfg, store)
        return snapshots.create_snapshot(cfg, store, objects or open_objects(cfg)).snapshot_id


def _row(cfg, run_id):
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        rows = store.query("SELECT * FROM training_runs WHERE training_run_id = ?", [run_id])
    return rows[0] if rows else None


def test_train_publishes_the_model_and_records_the_run(config, tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sid = _snapshot(config)
    objects = open_objects(config)
    said: list[str] = []
    run_id = sft.train(config, sid, overrides=_overrides(tiny_model), progress=said.append)
    assert run_id == sft.training_run_id_for(config, sid, _overrides(tiny_model))
    manifest = sft.published_model(objects, run_id)
    assert MODEL_FILES <= set(manifest["files"]) and "training_args.bin" not in manifest["files"]
    assert [x["step"] for x in manifest["losses"]] == [1, 2, 3, 4] and manifest["global_step"] == 4
    assert all(x["loss"] > 0 for x in manifest["losses"])
    assert manifest["segments"] == [{"from_step": 0, "to_step": 4}] and manifest["snapshot_id"] == sid
    assert manifest["config"]["training"]["learning_rate"] == 1e-5 and manifest["config"]["world_size"] == 1
    assert checkpoints.published_steps(objects, run_id) == [4]  # keep_checkpoints 1: checkpoint 2 deleted
    assert any("checkpoint 2 published" in s for s in said) and any("checkpoint 4 published" in s for s in said)

    row = _row(config, run_id)
    assert row["status"] == "done" and row["snapshot_id"] == sid and row["global_step"] == 4
    assert row["output_uri"] == objects.uri(sft.model_prefix(run_id))
    assert json.loads(row["losses"]) == manifest["losses"]
    assert json.loads(row["config"])["training_config_hash"] == row["training_config_hash"]

    # the evaluation side: download the model directory and load it
    local = tmp_path / "model"
    for name in manifest["files"]:
        objects.get_file(join_key(sft.model_prefix(run_id), name), local / name)
    model = AutoModelForCausalLM.from_pretrained(local)
    tok = AutoTokenizer.from_pretrained(local)
    assert model.config.num_hidden_layers == 2 and tok.chat_template

    # rerunning is the same run: nothing is trained again
    said.clear()
    assert sft.train(config, sid, overrides=_overrides(tiny_model), progress=said.append) == run_id
    assert said == [f"run {run_id} is already trained: {objects.uri(sft.model_prefix(run_id))}"]
    assert _row(config, run_id)["finished_at"] == row["finished_at"]


def test_resume_from_a_published_checkpoint_reproduces_the_run(config, tiny_model):
    sid = _snapshot(config)
    objects = open_objects(config)
    ov = _overrides(tiny_model, keep_checkpoints=2)
    run_id = sft.train(config, sid, overrides=ov, progress=lambda s: None)
    uninterrupted = sft.published_model(objects, run_id)["losses"]
    # the state a kill after checkpoint 2 leaves: no model, checkpoint 4 never completed, local leftovers
    objects.delete(join_key(sft.model_prefix(run_id), "manifest.json"))
    objects.delete(join_key(checkpoints.checkpoint_prefix(run_id, 4), "manifest.json"))
    (config.path("training") / run_id / "trainer" / "checkpoint-3").mkdir(parents=True)
    said: list[str] = []
    assert sft.train(config, sid, overrides=ov, progress=said.append) == run_id
    resumed = sft.published_model(objects, run_id)
    assert f"resuming run {run_id} from its published checkpoint 2" in said
    assert not any(s.startswith("step 1/") or s.startswith("step 2/") for s in said)  # not trained again
    assert [s for s in said if s.startswith("step ")] == [f"step 3/4: loss {uninterrupted[2]['loss']:.4f}",
                                                          f"step 4/4: loss {uninterrupted[3]['loss']:.4f}"]
    assert resumed["segments"] == [{"from_step": 0, "to_step": 2}, {"from_step": 2, "to_step": 4}]
    assert [x["step"] for x in resumed["losses"]] == [1, 2, 3, 4]
    for a, b in zip(resumed["losses"], uninterrupted, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert _row(config, run_id)["segments"] and json.loads(_row(config, run_id)["segments"]) == resumed["segments"]

    # killed after the last checkpoint but before the model was published: publish it, train nothing more
    objects.delete(join_key(sft.model_prefix(run_id), "manifest.json"))
    said.clear()
    assert sft.train(config, sid, overrides=ov, progress=said.append) == run_id
    assert f"resuming run {run_id} from its published checkpoint 4" in said
    assert not [s for s in said if s.startswith("step ")]
    again = sft.published_model(objects, run_id)
    assert again["global_step"] == 4 and again["losses"] == resumed["losses"]
    assert MODEL_FILES <= set(again["files"]) and not {"optimizer.pt", "trainer_state.json"} & set(again["files"])

    # a damaged checkpoint fails the run with a clear error, recorded on its row
    objects.delete(join_key(sft.model_prefix(run_id), "manifest.json"))
    key = join_key(checkpoints.checkpoint_prefix(run_id, 4), "trainer_state.json")
    objects.put_bytes(key, b"{}")
    with pytest.raises(StoreError, match="trainer_state.json.*fails its checksum"):
        sft.train(config, sid, overrides=ov, progress=lambda s: None)
    row = _row(config, run_id)
    assert row["status"] == "failed" and "checksum" in row["error"]


def test_worker_does_not_open_the_store_and_the_writer_records_later(config, tiny_model, tmp_path, monkeypatch):
    from warriorflow.cli import main

    sid = _snapshot(config)
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"experts_file: {config.experts_file}\n"
        "paths: {home: '${WARRIORFLOW_HOME}', model_cache: '${WARRIORFLOW_MODEL_CACHE}'}\n"
        f"training: {{base_model: {tiny_model}, max_steps: 2, save_steps: 2, max_seq_length: 128, device: cpu}}\n")
    runner = CliRunner()
    monkeypatch.setenv("WARRIORFLOW_ROLE", "worker")
    out = runner.invoke(main, ["--config", str(settings), "train", "--snapshot", sid])
    assert out.exit_code == 0, out.output
    assert "model published" in out.output
    monkeypatch.delenv("WARRIORFLOW_ROLE")
    with RatingStore(config.duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM training_runs")[0]["n"] == 0
    rec = runner.invoke(main, ["--config", str(settings), "train", "--snapshot", sid, "--record-only", "--json"])
    assert rec.exit_code == 0, rec.output
    row = json.loads(rec.output)
    assert row["status"] == "done" and row["global_step"] == 2 and [x["step"] for x in row["losses"]] == [1, 2]
    missing = runner.invoke(main, ["--config", str(settings), "train", "--snapshot", "2026-01-01T00-00-00Z-00000000"])
    assert missing.exit_code == 2 and "no such snapshot" in missing.output


def test_train_against_seaweedfs(config, tiny_model, seaweedfs):
    s3 = S3ObjectStore("wf-training", f"t-{uuid.uuid4().hex[:10]}", endpoint_url=seaweedfs.endpoint_url,
                       region=seaweedfs.region, access_key_id=seaweedfs.access_key,
                       secret_access_key=seaweedfs.secret_key, create_bucket=True)
    sid = _snapshot(config, s3)
    run_id = sft.train(config, sid, objects=s3, overrides=_overrides(tiny_model, max_steps=2, save_steps=1),
                       progress=lambda s: None)
    assert checkpoints.published_steps(s3, run_id) == [2]
    manifest = sft.published_model(s3, run_id)
    assert MODEL_FILES <= set(manifest["files"]) and manifest["global_step"] == 2
    row = _row(config, run_id)
    assert row["status"] == "done" and row["output_uri"].startswith("s3://wf-training/")


def test_a_max_seq_length_that_leaves_nothing_to_train_on_is_a_clear_error(config, tiny_model):
    """Prompts longer than max_seq_length leave TRL no example; that is named, not a sampler ValueError."""
    from warriorflow.errors import ConfigError

    sid = _snapshot(config)
    with pytest.raises(ConfigError, match="max_seq_length=16") as exc:
        sft.train(config, sid, overrides=_overrides(tiny_model, max_seq_length=16))
    assert "raise training.max_seq_length" in str(exc.value)
    row = _row(config, sft.training_run_id_for(config, sid, _overrides(tiny_model, max_seq_length=16)))
    assert row["status"] == "failed" and "max_seq_length" in row["error"]


def test_dpo_trains_on_the_preference_pairs_and_resumes_like_sft(config, tiny_model):
    from warriorflow.errors import ConfigError

    sid = _snapshot(config)
    objects = open_objects(config)
    ov = _overrides(tiny_model, method="dpo", max_steps=2, save_steps=1, keep_checkpoints=2, max_seq_length=96)
    said: list[str] = []
    run_id = sft.train(config, sid, overrides=ov, progress=said.append)
    assert run_id.startswith("dpo-") and run_id == sft.training_run_id_for(config, sid, ov)
    assert sft.training_run_id_for(config, sid, {**ov, "method": "sft"}).startswith("sft-")
    assert any(f"(dpo): 2 steps on {len(PROBLEMS)} preference pairs" in s for s in said)
    manifest = sft.published_model(objects, run_id)
    assert manifest["method"] == "dpo" and manifest["config"]["training"]["method"] == "dpo"
    assert manifest["config"]["training"]["dpo_beta"] == 0.1 and manifest["config"]["training"]["dpo_loss"] == "sigmoid"
    assert MODEL_FILES <= set(manifest["files"]) and manifest["global_step"] == 2
    losses = manifest["losses"]
    assert [x["step"] for x in losses] == [1, 2] and all(math.isfinite(x["loss"]) for x in losses)
    assert losses[0]["loss"] == pytest.approx(math.log(2), rel=1e-3)  # the policy starts as its reference
    row = _row(config, run_id)
    assert row["status"] == "done" and json.loads(row["config"])["training"]["method"] == "dpo"
    assert checkpoints.published_steps(objects, run_id) == [1, 2]

    # killed after checkpoint 1: resumes from it, trains step 2 only, the same losses
    objects.delete(join_key(sft.model_prefix(run_id), "manifest.json"))
    objects.delete(join_key(checkpoints.checkpoint_prefix(run_id, 2), "manifest.json"))
    said.clear()
    assert sft.train(config, sid, overrides=ov, progress=said.append) == run_id
    assert f"resuming run {run_id} from its published checkpoint 1" in said
    assert [s for s in said if s.startswith("step ")] == [f"step 2/2: loss {losses[1]['loss']:.4f}"]
    resumed = sft.published_model(objects, run_id)
    assert resumed["method"] == "dpo"
    assert resumed["segments"] == [{"from_step": 0, "to_step": 1}, {"from_step": 1, "to_step": 2}]
    for a, b in zip(resumed["losses"], losses, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)

    # a min_margin above every margin leaves nothing: named, not an empty-sampler error
    with pytest.raises(ConfigError, match="training.min_margin"):
        sft.train(config, sid, overrides={**ov, "min_margin": 1.0}, progress=lambda s: None)


def test_a_format1_snapshot_still_trains_as_sft(config, tiny_model):
    sid = _snapshot(config)
    objects = open_objects(config)
    old = publish_format1_snapshot(objects, sid)
    ov = _overrides(tiny_model, max_steps=1, save_steps=1)
    run_id = sft.train(config, old, overrides=ov, progress=lambda s: None)
    manifest = sft.published_model(objects, run_id)
    assert run_id.startswith("sft-") and manifest["method"] == "sft" and manifest["snapshot_id"] == old
    assert manifest["global_step"] == 1 and math.isfinite(manifest["losses"][0]["loss"])
