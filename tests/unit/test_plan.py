"""Battle planning: attacker = miner, balanced defenders, suspicion-averting judges, missing-only,
deterministic, and a newcomer's plan holds only its own battles."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from tests.helpers import write_yaml
from warriorflow.config import load_registry
from warriorflow.method.planning import Existing, plan_battles

REG = """
experts:
  - {name: a, backend: llamacpp, model: {gguf: /a.gguf}}
  - {name: b, backend: llamacpp, model: {gguf: /b.gguf}}
  - {name: c, backend: llamacpp, model: {gguf: /c.gguf}}
  - {name: c-twin, backend: openai, model: {endpoint: "http://h/v1"}, weights_id: "pypi:c", roles: [judge]}
  - {name: j, backend: llamacpp, model: {gguf: /j.gguf}, roles: [judge]}
  - {name: base, backend: llamacpp, model: {gguf: /g.gguf}, chat_template: {source: none},
     few_shot_prompt: mine_few_shot.txt, roles: [mine]}
"""


def _reg(tmp_path, body=REG):
    return load_registry(write_yaml(tmp_path / "e.yaml", body.replace('"pypi:c"', "gguf:/c.gguf")))


def _ins(n, miners):
    return [{"instruction_id": f"i{k:03d}", "text": f"task {k}", "expert": miners[k % len(miners)]} for k in range(n)]


def test_attacker_is_the_miner_and_defenders_balance(tmp_path):
    reg = _reg(tmp_path)
    plan = plan_battles(_ins(30, ["a", "b", "c"]), reg)
    assert len(plan.battles) == 30
    by_ins = {b.instruction_id: b for b in plan.battles}
    assert all(by_ins[f"i{k:03d}"].attacker == "abc"[k % 3] for k in range(30))
    assert all(b.attacker != b.defender for b in plan.battles)
    assert plan.balance() == {n: {"attacks": 10, "defences": 10} for n in "abc"}


def test_judges_exclude_competitors_and_their_weights(tmp_path):
    reg = _reg(tmp_path)
    for b in plan_battles(_ins(12, ["a", "b", "c"]), reg, defenders_per_instruction=2).battles:
        assert b.attacker not in b.judges and b.defender not in b.judges
        if "c" in (b.attacker, b.defender):
            assert "c-twin" not in b.judges  # same weights as a competitor
        assert "j" in b.judges and "base" not in b.judges


def test_defenders_per_instruction_up_to_all_others(tmp_path):
    plan = plan_battles(_ins(6, ["a", "b", "c"]), _reg(tmp_path), defenders_per_instruction=5)
    per = Counter(b.instruction_id for b in plan.battles)
    assert set(per.values()) == {2}  # all other answerers
    assert plan.balance() == {n: {"attacks": 4, "defences": 4} for n in "abc"}


def test_a_base_model_miner_never_attacks(tmp_path):
    plan = plan_battles(_ins(6, ["base"]), _reg(tmp_path))
    assert all("base" not in (b.attacker, b.defender) for b in plan.battles) and len(plan.battles) == 6
    assert max(plan.attacks.values()) - min(plan.attacks.values()) <= 1


def test_planning_twice_gives_the_same_plan_and_existing_battles_are_not_replanned(tmp_path):
    reg = _reg(tmp_path)
    ins = _ins(9, ["a", "b", "c"])
    p1, p2 = plan_battles(ins, reg), plan_battles(list(reversed(ins)), reg)
    assert p1.battles == p2.battles
    t0 = datetime(2026, 11, 1)
    existing = {b.instruction_id: Existing(frozenset({b.defender}), b.attacker, t0) for b in p1.battles}
    again = plan_battles(ins, reg, existing=existing, expert_since={n: datetime(2026, 10, 1) for n in "abc"})
    assert again.battles == []


def test_after_adding_an_expert_the_plan_holds_only_its_battles(tmp_path):
    reg = _reg(tmp_path)
    ins = _ins(9, ["a", "b", "c"])
    first = plan_battles(ins, reg)
    t0 = datetime(2026, 11, 1)
    existing = {b.instruction_id: Existing(frozenset({b.defender}), b.attacker, t0) for b in first.battles}
    reg2 = _reg(tmp_path, REG + "  - {name: newbie, backend: llamacpp, model: {gguf: /n.gguf}}\n")
    since = {**{n: datetime(2026, 10, 1) for n in "abc"}, "newbie": datetime(2026, 11, 20)}
    plan = plan_battles(ins, reg2, existing=existing, expert_since=since, next_order=100)
    assert len(plan.battles) == 9
    assert all(b.defender == "newbie" and b.attacker == existing[b.instruction_id].attacker for b in plan.battles)
    assert [b.battle_order for b in plan.battles] == list(range(100, 109))
    assert all("newbie" not in b.judges for b in plan.battles)


def test_no_eligible_judge_is_skipped_and_reported(tmp_path):
    reg = load_registry(write_yaml(tmp_path / "e.yaml", """
experts:
  - {name: a, backend: llamacpp, model: {gguf: /a.gguf}}
  - {name: b, backend: llamacpp, model: {gguf: /b.gguf}}
"""))
    plan = plan_battles(_ins(2, ["a", "b"]), reg)
    assert plan.battles == [] and plan.skipped == {"no_eligible_judges": ["i000", "i001"]}
