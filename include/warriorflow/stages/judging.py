"""Plan a judging round: the vote requests of every open battle whose two responses are stored, for the
judges it still needs (all of its panel, or with sequential voting the fewest that could still decide
it), written as judge jobs, one per (judge, shard). Votes already cast are never asked again, so a
failed judge job's votes are simply asked in the next round or run. With ``arena.execution.in_prompt``, each
vote request carries the battle's execution summaries (the ``executions`` table), shown in the judge prompt."""

from __future__ import annotations

from warriorflow.config import Config
from warriorflow.method.battle_jobs import response_request, vote_requests
from warriorflow.method.judging import check_template
from warriorflow.stages.base import Outcome, stage
from warriorflow.stages.ingest_battles import close_finished, open_battles, verdicts_of
from warriorflow.stages.job_plans import write_jobs
from warriorflow.stages.prompt_files import read_prompt
from warriorflow.store.executions import execution_summaries
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore
from warriorflow.store.vote_log import judge_priors


@stage("plan_votes")
def plan_votes_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str,
                     round_no: int = 1) -> Outcome:
    """Write round ``round_no``'s judge jobs; the value is the jobs (dicts: key, step, model, items)."""
    arena = config.settings.arena
    closed = close_finished(config, store, run_id)  # judged before (an earlier attempt): nothing to ask
    battles = open_battles(store)
    wanted = {response_request(arena, b.instruction_id, b.instruction, e).response_id: (b.instruction_id, e)
              for b in battles for e in (b.attacker, b.defender)}
    texts = {wanted[r["response_id"]]: r["text"] for r in store.query(
        "SELECT response_id, text FROM responses WHERE response_id IN (SELECT unnest(?))", [sorted(wanted)])}
    ex = arena.execution
    evidence = execution_summaries(store, [b.battle_id for b in battles]) if ex.enabled and ex.in_prompt else None
    requests = vote_requests(battles, arena, verdicts_of(store, [b.battle_id for b in battles]), texts,
                             judge_priors(store), evidence)
    template = read_prompt(config, arena.judge_prompt, check_template, "arena.judge_prompt")
    jobs = write_jobs(config, objects, run_id, "judge", {j: [r.to_dict() for r in rs] for j, rs in requests.items()},
                      {"arena": arena.model_dump(mode="json"), "template": template}, round_no=round_no)
    waiting = sum(1 for b in battles if (b.instruction_id, b.attacker) not in texts
                  or (b.instruction_id, b.defender) not in texts)
    return Outcome({"open_battles": len(battles), "closed_before": closed, "waiting_for_responses": waiting,
                    "judge_jobs": len(jobs), "votes_asked": sum(j.items for j in jobs)}, [],
                   [j.to_dict() for j in jobs])
