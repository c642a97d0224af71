"""The steps over the stores, one module each: read by status -> the method -> write, with a StageReport.

Instruction steps: mine (worker, files only) -> ingest -> dedup -> score -> decontaminate -> compress -> tag.
Battle steps: plan -> battle (worker, files only) -> ingest_battles -> rate -> gold.
:mod:`~.base` holds what they share (``@stage``, the report, advance and drop); :mod:`~.cycles` runs
whole cycles in one process.
"""
