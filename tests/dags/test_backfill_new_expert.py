"""A new expert joins, then `airflow backfill create --dag-id warriorflow_battle` runs on a real `airflow
standalone` (SQLite, LocalExecutor, the real scheduler and api-server on 127.0.0.1) with the real tiny
models: for the backfilled intervals only the newcomer's missing battles run; battles that were already
fought are not redone, and instructions selected outside those intervals are left alone.

Also covers `make run`'s machinery (warriorflow.cli.local_airflow): start, health, login with the known
password, the REST API, and stop (the whole process group is gone afterwards)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import yaml

from tests.helpers import free_port, write_yaml
from warriorflow.cli.local_airflow import LocalAirflow, session_members, wait_backfill
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.stages.cycles import battle_cycle, instruction_cycle
from warriorflow.store.rating_store import RatingStore

# a real airflow standalone, scheduler and tiny models: a hang guard, not a speed goal (a loaded 2-core machine
# needs more than the suite-wide 900 s)
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2700)]

NEWCOMER = "smollm2-135m-newcomer"
# Selection days -> the daily 06:00 tick that owns them ([D-1 06:00, D 06:00)). The first day is outside the
# backfill; unpausing the DAG also starts its latest scheduled tick (today), which owns none of these days.
DAYS = [datetime(2026, 11, 18, 12), datetime(2026, 11, 19, 12), datetime(2026, 11, 20, 12)]
BACKFILL_FROM, BACKFILL_TO = "2026-11-20T00:00:00Z", "2026-11-21T12:00:00Z"  # ticks 11-20 06:00 and 11-21 06:00
BACKFILLED_DAYS = DAYS[1:]


def _settings(tmp_path, experts_file):
    return write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {experts_file}
paths: {{home: {tmp_path / "home"}, model_cache: {tmp_path / "models"}}}
inference: {{llamacpp: {{threads: 2, n_parallel: 4, ctx_per_sequence: 1536}}}}
mining: {{temperatures: [1.0, 1.1], top_ps: [0.99, 1.0], samples_per_config: 2, max_tokens: 96, min_chars: 15}}
difficulty: {{keep_min: 1}}
compression: {{budget: 0.99}}   # a fraction: nearly every instruction
arena: {{response_max_tokens: 24, both_orders: false}}
rating: {{bootstrap_rounds: 10}}
tagging: {{enabled: false}}
flywheel: {{min_new_gold: 100000}}
""")


def _backfill_create(env: dict[str, str], attempts: int = 5) -> subprocess.CompletedProcess:
    """`airflow backfill create`, again while SQLite says "database is locked": standalone's metadata DB is one
    SQLite file, and the scheduler may hold its write lock just then (it is starting the tick that unpausing
    queued). The failed attempt rolled back whole, so creating the backfill again is safe."""
    for attempt in range(attempts):
        created = subprocess.run([sys.executable, "-m", "airflow", "backfill", "create", "--dag-id",
                                  "warriorflow_battle", "--from-date", BACKFILL_FROM, "--to-date", BACKFILL_TO,
                                  "--max-active-runs", "1"], env=env, capture_output=True, text=True, timeout=300)
        if created.returncode == 0 or "database is locked" not in created.stderr or attempt == attempts - 1:
            return created
        time.sleep(5)
    raise AssertionError("unreachable")


def test_backfill_after_a_new_expert_joins_runs_only_its_missing_battles(tmp_path, model_cache, monkeypatch):
    registry = yaml.safe_load((CONFIG_DIR / "experts.embedded.yaml").read_text())
    for e in registry["experts"]:  # the copy lives elsewhere: template files by absolute path
        if e.get("chat_template", {}).get("source") == "file":
            e["chat_template"]["path"] = str(CONFIG_DIR / e["chat_template"]["path"])
    experts_file = tmp_path / "experts.yaml"
    experts_file.write_text(yaml.safe_dump(registry))
    settings = _settings(tmp_path, experts_file)
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(settings))
    (tmp_path / "models").symlink_to(model_cache, target_is_directory=True)
    cfg = load_config(settings)

    # 1. the flywheel before the newcomer: instructions mined and selected, their battles fought and judged
    instruction_cycle(cfg, "mine-1")
    battle_cycle(cfg, "battle-1")
    with RatingStore(cfg.duckdb_path) as store:
        selected = [r["instruction_id"] for r in store.query(
            "SELECT instruction_id FROM instruction_selections ORDER BY pick_rank")]
        assert len(selected) >= 2, "the tiny models selected too few instructions for this test"
        # selected over three days: the first outside the backfill, the others on the two backfilled days
        day_of = {iid: DAYS[0] if i == 0 else BACKFILLED_DAYS[i % 2] for i, iid in enumerate(selected)}
        store.update("instruction_selections", "instruction_id",
                     [{"instruction_id": iid, "selected_at": day} for iid, day in day_of.items()])
        before = {b["battle_id"]: b for b in store.query("SELECT * FROM battles")}
        votes_before = store.query("SELECT count(*) AS n FROM votes")[0]["n"]
        attackers = {r["instruction_id"]: r["attacker"] for r in store.query(
            "SELECT DISTINCT instruction_id, attacker FROM battles")}
    assert before and all(b["status"] == "done" for b in before.values())
    assert NEWCOMER not in {x for b in before.values() for x in (b["attacker"], b["defender"])}

    # 2. a new expert joins the registry (SmolLM2 weights under a new name: an answerer, not a judge)
    smollm2 = next(e for e in registry["experts"] if e["name"].startswith("smollm2"))
    registry["experts"].append({**smollm2, "name": NEWCOMER, "roles": ["answer"]})
    experts_file.write_text(yaml.safe_dump(registry))

    # 3. the documented backfill, on a real airflow standalone
    local = LocalAirflow(home=tmp_path / "airflow", port=free_port(), log_port=free_port(),
                         trigger_log_port=free_port(),
                         extra_env={"WARRIORFLOW_CONFIG": str(settings), "WARRIORFLOW_HOME": str(tmp_path / "home")})
    try:
        local.start(timeout_s=300)
        api = local.api()
        api.wait_for_dags(("warriorflow_battle",))
        since = datetime.now(UTC)
        api.unpause("warriorflow_battle")  # Airflow starts no run, backfills included, of a paused DAG
        created = _backfill_create(local.env())
        assert created.returncode == 0, created.stderr[-2000:]
        runs = wait_backfill(api, "warriorflow_battle", since, timeout_s=1800, log=print)
        # one run per tick in [from, to]; each owns the day before its tick (logical date = interval start)
        assert sorted(r["data_interval_end"][:16] for r in runs) == ["2026-11-20T06:00", "2026-11-21T06:00"]
        assert sorted(r["data_interval_start"][:16] for r in runs) == ["2026-11-19T06:00", "2026-11-20T06:00"]
    finally:
        pid = local.pid()
        assert local.stop()
    assert pid is not None and not session_members(pid), "make stop leaves no airflow or task process behind"

    # 4. only the newcomer's missing battles ran, and only for the backfilled intervals
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        after = {b["battle_id"]: b for b in store.query("SELECT * FROM battles")}
        votes_after = store.query("SELECT count(*) AS n FROM votes WHERE battle_id IN "
                                  f"({', '.join(repr(b) for b in before)})")[0]["n"]
    new = {k: b for k, b in after.items() if k not in before}
    assert {k: after[k] for k in before} == before, "existing battles were not redone or changed"
    assert votes_after == votes_before
    assert new and all(NEWCOMER in (b["attacker"], b["defender"]) for b in new.values())
    assert all(b["status"] == "done" for b in new.values())
    backfilled = {iid for iid, day in day_of.items() if day in BACKFILLED_DAYS and iid in attackers}
    assert {b["instruction_id"] for b in new.values()} == backfilled
    assert all(b["attacker"] == attackers[b["instruction_id"]] and b["defender"] == NEWCOMER for b in new.values())
