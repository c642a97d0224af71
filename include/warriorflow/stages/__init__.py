"""The steps over the stores, one module each: read by status -> the method -> write, with a StageReport.

Instruction steps: mine (worker, files only) -> ingest -> dedup -> filter -> plan_scores -> [score jobs] -> score ->
decontaminate -> plan_embeddings -> [embed job] -> compress -> plan_tags -> [tag jobs] -> tag.
Battle steps: plan -> [response jobs] -> ingest_responses -> plan_executions -> [execute jobs: the sandbox]
-> ingest_executions (:mod:`~.execute`) -> (plan_votes -> [judge jobs] -> ingest_votes) per judging round -> rate
-> gold. A job (:mod:`~.jobs`) runs one model and writes files only; the
writer steps around it (:mod:`~.job_plans`) write its input and ingest its result.
:mod:`~.base` holds what they share (``@stage``, the report, advance and drop); :mod:`~.cycles` runs
whole cycles in one process; :mod:`~.battle` is the single-process reference battle batch.
"""
