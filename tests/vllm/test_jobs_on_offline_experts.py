"""Model jobs on two *different* offline vLLM experts, in sequence, each in its own process: a response job on
one expert, then a judge job on the other (`warriorflow job --in URI`, what a GPU pod runs). Each process
loads exactly one engine (its receipt says which), and the records are real: the response answers, the
verdict is one of the constrained choices."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.vllm.conftest import REPO
from warriorflow.config import PROMPTS_DIR, ArenaSettings
from warriorflow.method import battle_jobs as bj
from warriorflow.method import ids
from warriorflow.method.jobs import JobInput
from warriorflow.store.jsonl import decode_jsonl
from warriorflow.store.keys import job_in_key, job_out_for, job_receipt_for
from warriorflow.store.objects import LocalObjectStore

pytestmark = pytest.mark.vllm

EXPERTS = """experts:
  - name: answerer
    backend: vllm
    model: {{hf_dir: {model}}}
    chat_template: {{source: model}}
    roles: [answer]
    weights_id: smollm2-as-answerer
  - name: judge
    backend: vllm
    model: {{hf_dir: {model}}}
    chat_template: {{source: model}}
    roles: [judge]
    weights_id: smollm2-as-judge
"""


def test_a_response_job_then_a_judge_job_each_load_one_engine(smollm2_hf_dir, tmp_path):
    home = tmp_path / "home"
    (tmp_path / "experts.yaml").write_text(EXPERTS.format(model=smollm2_hf_dir))
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"""
experts_file: experts.yaml
paths: {{home: {home}}}
inference: {{vllm: {{dtype: float32, max_model_len: 1024, enforce_eager: true, gpu_memory_utilization: 0.9}}}}
arena: {{response_max_tokens: 24, both_orders: true}}
""")
    arena = ArenaSettings(response_max_tokens=24, both_orders=True)
    objects = LocalObjectStore(home / "objects")
    texts = ["Write a Python function that reverses a string.", "Write a Python function that sums a list."]
    requests = [bj.response_request(arena, ids.instruction_id(t), t, "answerer") for t in texts]
    respond = JobInput("respond-answerer-s0000", "respond", "answerer", "run-1",
                       {"arena": arena.model_dump(mode="json")}, tuple(r.to_dict() for r in requests))
    respond_key = job_in_key("run-1", "respond", respond.job_id)
    objects.put_bytes(respond_key, respond.to_json())

    env = {**os.environ, "WARRIORFLOW_CONFIG": str(settings), "VLLM_CPU_KVCACHE_SPACE": "1",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}

    def run(key: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "warriorflow.cli", "job", "--in", objects.uri(key)], env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(objects.get_bytes(job_receipt_for(job_out_for(key))))

    receipt = run(respond_key)
    assert receipt["models_loaded"] == ["answerer"] and receipt["records"] == 2
    responses = decode_jsonl(objects.get_bytes(job_out_for(respond_key)))
    assert [r["response_id"] for r in responses] == [r.response_id for r in requests]
    assert all(r["expert"] == "answerer" and r["text"].strip() for r in responses)

    # the judge job, on the other expert, judges those two answers against each other in both orders
    b = bj.PlannedBattle(ids.battle_id(requests[0].instruction_id, "answerer", "other"), requests[0].instruction_id,
                         texts[0], "answerer", "other", ("judge",), 0)
    votes = bj.vote_requests([b], arena, {}, {(b.instruction_id, "answerer"): responses[0]["text"],
                                             (b.instruction_id, "other"): responses[1]["text"]})
    template = (PROMPTS_DIR / "battle_judge.txt").read_text()
    judge = JobInput("judge-r01-judge-s0000", "judge", "judge", "run-1",
                     {"arena": arena.model_dump(mode="json"), "template": template},
                     tuple(v.to_dict() for v in votes["judge"]), 1)
    judge_key = job_in_key("run-1", "judge", judge.job_id)
    objects.put_bytes(judge_key, judge.to_json())
    receipt = run(judge_key)
    assert receipt["models_loaded"] == ["judge"] and receipt["records"] == 2
    cast = decode_jsonl(objects.get_bytes(job_out_for(judge_key)))
    assert {v["shown_order"] for v in cast} == {"attacker_first", "defender_first"}
    assert all(v["raw_verdict"] in ("A", "B", "tie") for v in cast)  # constrained by vLLM's structured output
