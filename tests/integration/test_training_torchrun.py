"""Data-parallel training as the training pod runs it: `torchrun ... -m warriorflow.cli train` (the command
comes from warriorflow.tasks.pods.training_command), here with 2 CPU processes (gloo) on the tiny Llama of
test_training.py. Two processes with one example each per step must give the losses of one process that
accumulates two micro-batches (the same global batch of 2), and a torchrun process group killed after its
first published checkpoint must, when run again, resume from that checkpoint and end with the losses of
an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.test_training import tiny_model  # noqa: F401  (the fixture)
from tests.sft_seed import seed_and_rate
from warriorflow.config import CONFIG_DIR, PodResources, load_config
from warriorflow.config.paths import TRAINING_DIR_ENV
from warriorflow.store import snapshots
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore
from warriorflow.tasks.pods import training_command
from warriorflow.training import checkpoints, sft

pytestmark = pytest.mark.integration
PROCESSES = 2
# Losses of 2 processes x 1 example vs 1 process x 2 accumulated micro-batches: the same examples, the same
# token-weighted mean (the Trainer scales each process's loss by the world size and divides by the tokens
# of all processes), the same update. Only the float32 summation may differ (the gloo all-reduce vs the
# in-place accumulation); measured here: bit-identical (max abs diff 0), as (2a + 2b) / 2 == a + b exactly.
# rtol = atol = 1e-4 allows other summation orders (~1e-6) and stays far below a real difference: another
# example on a rank changes step 1, a different update changes step 2 by ~2e-2 (lr 2e-3 instead of 1e-3).
RTOL = ATOL = 1e-4
STEPS = 6
LR = 1e-3  # large enough that each update shows in the next loss (2e-3 moves step 2 by 2e-2)


@dataclass
class Run:
    home: Path
    settings: Path
    snapshot_id: str
    run_id: str
    manifest: dict
    log: str


def _settings(home: Path, tiny: Path, name: str, **training) -> Path:
    """A settings file of its own home (store, rating store, object store below it) for the tiny model."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / name
    path.write_text(yaml.safe_dump({
        "experts_file": str(CONFIG_DIR / "experts.embedded.yaml"),
        "paths": {"home": str(home)},
        "training": {"base_model": str(tiny), "max_steps": STEPS, "save_steps": 2, "keep_checkpoints": 1,
                     "max_seq_length": 128, "per_device_batch_size": 1, "device": "cpu", "precision": "fp32",
                     "logging_steps": 1, "learning_rate": LR, "warmup_ratio": 0.0, **training}}))
    return path


def _snapshot(settings: Path) -> str:
    cfg = load_config(settings)
    with RatingStore(cfg.duckdb_path) as store:
        seed_and_rate(cfg, store)
        return snapshots.create_snapshot(cfg, store, open_objects(cfg)).snapshot_id


def _copy_snapshot(sid: str, source: Path, dest: Path) -> None:
    a, b = open_objects(load_config(source)), open_objects(load_config(dest))
    for key in a.list(snapshots.prefix(sid) + "/"):
        b.put_bytes(key, a.get_bytes(key))


def _command(settings: Path, sid: str) -> tuple[list[str], dict[str, str]]:
    """The training pod's command (torchrun, one process per "GPU") and env, on this machine's CPUs."""
    cmd = training_command(["train", "--snapshot", sid, "--no-record"], PodResources(gpus=PROCESSES))
    assert cmd[:6] == ["torchrun", "--standalone", "--nnodes", "1", "--nproc-per-node", str(PROCESSES)]
    cmd[0] = str(Path(sys.executable).with_name("torchrun"))  # the venv's
    env = dict(os.environ, WARRIORFLOW_CONFIG=str(settings), WARRIORFLOW_ROLE="worker", HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               **{TRAINING_DIR_ENV: str(settings.parent / "checkpoint-volume")})
    return cmd, env


def _torchrun(settings: Path, sid: str, log: Path) -> str:
    cmd, env = _command(settings, sid)
    done = subprocess.run(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, timeout=900)
    text = log.read_text()
    assert done.returncode == 0, text[-4000:]
    return text


def _kill_tree(pid: int) -> list:
    """SIGKILL a process and all its descendants at once, as a pod's eviction does (torchrun starts each worker
    in a session of its own, so killing torchrun's process group would leave them running)."""
    import psutil

    root = psutil.Process(pid)
    workers = root.children(recursive=True)
    for p in (root, *workers):
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    gone, alive = psutil.wait_procs(workers, timeout=60)  # not the root: the caller's Popen reaps it
    assert not alive, alive
    return workers


def _published(settings: Path, run_id: str) -> dict:
    manifest = sft.published_model(open_objects(load_config(settings)), run_id)
    assert manifest is not None
    return manifest


def _losses(manifest: dict) -> list[float]:
    assert [x["step"] for x in manifest["losses"]] == list(range(1, STEPS + 1))
    return [x["loss"] for x in manifest["losses"]]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, tiny_model) -> Run:  # noqa: F811
    """An uninterrupted run of 2 torchrun processes, 1 example each per step (global batch 2)."""
    home = tmp_path_factory.mktemp("torchrun-2")
    settings = _settings(home, tiny_model, "two.yaml", gradient_accumulation_steps=1)
    sid = _snapshot(settings)
    run_id = sft.training_run_id_for(load_config(settings), sid)
    text = _torchrun(settings, sid, home / "two.log")
    return Run(home, settings, sid, run_id, _published(settings, run_id), text)


def test_two_processes_train_like_one_that_accumulates_the_same_global_batch(two_processes, tiny_model):  # noqa: F811
    two = two_processes
    config = two.manifest["config"]
    assert config["world_size"] == PROCESSES and config["gradient_accumulation_steps"] == 1
    assert config["global_batch_size"] == 2
    assert two.manifest["segments"] == [{"from_step": 0, "to_step": STEPS}]
    # the work dir is where the pod's checkpoint volume is (WARRIORFLOW_TRAINING_DIR), not <home>/training
    assert (two.home / "checkpoint-volume" / two.run_id / "final" / "model.safetensors").is_file()
    assert not (two.home / "training").exists()
    # the local checkpoints went once the model was out (the published ones are the durable copies)
    assert not (two.home / "checkpoint-volume" / two.run_id / "trainer").exists()
    # every process ran, rank 0 alone published
    assert len(re.findall(rf"^training {two.run_id}\b.*: {STEPS} steps on", two.log, re.M)) == PROCESSES
    assert two.log.count("model published") == 1 and two.log.count("checkpoint 2 published") == 1

    settings = _settings(two.home, tiny_model, "one.yaml", gradient_accumulation_steps=2)
    cfg = load_config(settings)
    said: list[str] = []
    run_id = sft.train(cfg, two.snapshot_id, record=False, progress=said.append)
    one = _published(settings, run_id)
    assert one["config"]["world_size"] == 1 and one["config"]["gradient_accumulation_steps"] == 2
    assert one["config"]["global_batch_size"] == 2
    a, b = _losses(two.manifest), _losses(one)
    diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
    print(f"\nlosses, 2 processes x 1: {a}\nlosses, 1 process x 2 accumulated: {b}\nmax abs diff {diff:.3g}")
    assert a == pytest.approx(b, rel=RTOL, abs=ATOL)
    assert len(set(a)) == STEPS  # the steps differ: a real comparison, not of constants


def test_killed_torchrun_resumes_from_its_last_published_checkpoint(two_processes, tiny_model, tmp_path):  # noqa: F811
    """The same run in a second store: killed (torchrun and every worker, SIGKILL) once its first checkpoint is
    published, then launched again like a retried pod."""
    settings = _settings(tmp_path / "home", tiny_model, "two.yaml", gradient_accumulation_steps=1)
    _copy_snapshot(two_processes.snapshot_id, two_processes.settings, settings)
    cfg = load_config(settings)
    objects = open_objects(cfg)
    run_id = sft.training_run_id_for(cfg, two_processes.snapshot_id)
    assert run_id == two_processes.run_id  # same snapshot, same settings: the same run, in another store
    cmd, env = _command(settings, two_processes.snapshot_id)

    first_log = tmp_path / "first.log"
    with first_log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 600
        try:
            while not checkpoints.published_steps(objects, run_id):
                assert proc.poll() is None, f"exited early ({proc.returncode}):\n{first_log.read_text()[-4000:]}"
                assert time.monotonic() < deadline, "no checkpoint published within 600 s"
                time.sleep(0.05)
        finally:
            killed = _kill_tree(proc.pid)
            proc.wait(timeout=60)
    killed_at = checkpoints.published_steps(objects, run_id)
    assert proc.returncode == -signal.SIGKILL and len(killed) == PROCESSES  # torchrun and its workers
    assert sft.published_model(objects, run_id) is None, "the run finished before the kill"
    assert len(killed_at) == 1 and killed_at[0] < STEPS
    step = killed_at[0]

    second = _torchrun(settings, two_processes.snapshot_id, tmp_path / "second.log")
    assert f"resuming run {run_id} from its published checkpoint {step}" in second
    assert second.count("resuming run") == 1  # rank 0 downloads, the other waits and finds the files
    assert f"step {step}/{STEPS}:" not in second and f"step {STEPS}/{STEPS}:" in second
    manifest = _published(settings, run_id)
    assert manifest["segments"] == [{"from_step": 0, "to_step": step}, {"from_step": step, "to_step": STEPS}]
    assert manifest["global_step"] == STEPS and manifest["config"]["world_size"] == PROCESSES
    resumed, uninterrupted = _losses(manifest), _losses(two_processes.manifest)
    print(f"\nkilled after checkpoint {step}; resumed {resumed}\nuninterrupted {uninterrupted}")
    assert resumed == pytest.approx(uninterrupted, rel=1e-5, abs=1e-6)
