"""The embedded training run for real: SmolLM2-135M dequantized from its GGUF, trained with TRL on the CPU by
`warriorflow train` in a subprocess, killed with SIGKILL after its first checkpoint is published, then run
again: it must resume from that checkpoint (global step continues, earlier losses kept, right final step)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.sft_seed import seed_and_rate
from warriorflow.config import load_config
from warriorflow.store import snapshots
from warriorflow.store.objects import join_key, open_objects
from warriorflow.store.rating_store import RatingStore
from warriorflow.training import checkpoints, sft

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_kill_after_first_checkpoint_then_resume(config, tmp_path):
    with RatingStore(config.duckdb_path) as store:
        seed_and_rate(config, store)
        sid = snapshots.create_snapshot(config, store, open_objects(config)).snapshot_id
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"experts_file: {config.experts_file}\n"
        "paths: {home: '${WARRIORFLOW_HOME}', model_cache: '${WARRIORFLOW_MODEL_CACHE}'}\n"
        "training: {base_model: smollm2-135m-instruct, max_steps: 4, save_steps: 2, keep_checkpoints: 1,\n"
        "           max_seq_length: 128, per_device_batch_size: 1, device: cpu, precision: fp32}\n")
    cfg = load_config(settings)
    run_id = sft.training_run_id_for(cfg, sid)
    objects = open_objects(cfg)
    cmd = [sys.executable, "-m", "warriorflow.cli", "--config", str(settings), "train", "--snapshot", sid]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")

    first_log = tmp_path / "first.log"
    with open(first_log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 600
        while not checkpoints.published_steps(objects, run_id):
            assert proc.poll() is None, f"training exited early ({proc.returncode}):\n{first_log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint published within 600 s"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert checkpoints.published_steps(objects, run_id) == [2]
    assert sft.published_model(objects, run_id) is None
    first = first_log.read_text()
    assert "step 2/4" in first and "step 4/4" not in first
    _, ckpt = checkpoints.latest_checkpoint(objects, run_id)
    before = {x["step"]: x["loss"] for x in ckpt["losses"]}
    assert sorted(before) == [1, 2]

    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"resuming run {run_id} from its published checkpoint 2" in second.stdout
    assert "step 1/4" not in second.stdout and "step 3/4" in second.stdout and "step 4/4" in second.stdout

    manifest = sft.published_model(objects, run_id)
    assert manifest["global_step"] == 4
    assert manifest["segments"] == [{"from_step": 0, "to_step": 2}, {"from_step": 2, "to_step": 4}]
    losses = {x["step"]: x["loss"] for x in manifest["losses"]}
    assert sorted(losses) == [1, 2, 3, 4]
    assert {s: losses[s] for s in (1, 2)} == before  # the killed process's losses are kept
    assert checkpoints.published_steps(objects, run_id) == [4]
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        row = store.query("SELECT * FROM training_runs WHERE training_run_id = ?", [run_id])[0]
    assert row["status"] == "done" and row["global_step"] == 4 and row["snapshot_id"] == sid
    assert json.loads(row["config"])["base_model"].startswith("expert:smollm2-135m-instruct:")
    assert {"model.safetensors", "config.json", "chat_template.jinja"} <= set(manifest["files"])
    assert objects.exists(join_key(sft.model_prefix(run_id), "model.safetensors"))
