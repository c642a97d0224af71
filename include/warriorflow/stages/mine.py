"""Mine (worker side): sample each expert's grid and write result files. Never opens the rating store.

One job per expert: the expert's model is loaded once, completes every grid point, and the kept and
dropped records go to ``runs/RUN/mine/EXPERT.jsonl`` (and ``.dropped.jsonl``). The dropped file is
written first, so a batch exists once its main file does; a file already there is not redone.
"""

from __future__ import annotations

import logging
import time

from warriorflow.config import Config, Expert
from warriorflow.inference.factory import OpenBackends
from warriorflow.method.mining import mine_expert, sampling_grid
from warriorflow.method.progress import Progress
from warriorflow.models.locate import resolve_model
from warriorflow.stages.mining_prompt import mining_prompt
from warriorflow.store.jsonl import encode_jsonl
from warriorflow.store.keys import mine_key
from warriorflow.store.objects import ObjectStore

log = logging.getLogger(__name__)


def mine_to_files(config: Config, objects: ObjectStore, run_id: str, experts: list[Expert] | None = None,
                  progress: Progress = log.info) -> dict[str, dict[str, int]]:
    """Mine each expert (default: every mine-role expert) into its result files; return counts per expert."""
    counts = {}
    for expert in experts if experts is not None else config.registry.with_role("mine"):
        if objects.exists(mine_key(run_id, expert.name)):
            progress(f"mine {expert.name}: result file for run {run_id} exists, skipping")
            continue
        t = time.monotonic()
        n = len(sampling_grid(config.settings.mining, run_id, expert.name))
        progress(f"mine {expert.name}: sampling {n} completions ...")
        resolved = resolve_model(expert.name, expert.model, config.model_cache)
        prompt = mining_prompt(expert, config, resolved.path)
        with OpenBackends(config) as backends:
            result = mine_expert(backends[expert.name], prompt, config.settings.mining, run_id)
        objects.put_bytes(mine_key(run_id, expert.name, dropped=True), encode_jsonl(result.dropped))
        objects.put_bytes(mine_key(run_id, expert.name), encode_jsonl(result.records))
        counts[expert.name] = result.counts
        progress(f"mine {expert.name}: {result.counts} in {time.monotonic() - t:.0f}s")
    return counts
