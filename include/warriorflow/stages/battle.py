"""The single-process reference battle batch's I/O (``warriorflow battle-batch --in URI --out URI``): read
a batch, open every expert it needs and a checkpoint, run :func:`warriorflow.method.battle_batch.battle_batch`,
write the results. The flywheel runs battles as per-model jobs instead (:mod:`warriorflow.stages.plan`,
:mod:`warriorflow.stages.judging`); this path is what they are checked against, and the benchmarks'
workload. It never opens the rating store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from warriorflow.config import Config, Role
from warriorflow.errors import ConfigError
from warriorflow.inference.base import Backend
from warriorflow.inference.factory import OpenBackends
from warriorflow.method.battle_batch import BattleBatchInput, battle_batch, preflight
from warriorflow.method.progress import Progress, quiet
from warriorflow.store.checkpoint import Checkpoint, checkpoint_path
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.objects import open_object_uri


def run_battle_batch(batch: BattleBatchInput, backends: Mapping[str, Backend] | Callable[[str], Backend],
                     checkpoint_dir: Path, template: str, progress: Progress | None = None) -> list[dict]:
    """Run (or resume) ``batch`` with its checkpoint file in ``checkpoint_dir``; return its output records."""
    say = progress or quiet
    preflight(batch, backends, template)  # a bad prompt or a missing backend fails before the checkpoint exists
    ckpt = Checkpoint(checkpoint_path(checkpoint_dir, batch.to_dict(), template))
    try:
        if ckpt.responses or ckpt.votes or ckpt.cut_bytes:
            say(f"resuming from {ckpt.path.name}: {len(ckpt.responses)} responses, {len(ckpt.votes)} votes"
                + (f" (cut a torn tail of {ckpt.cut_bytes} bytes)" if ckpt.cut_bytes else ""))
        return battle_batch(batch, backends, ckpt, template, say)
    finally:
        ckpt.close()


def default_checkpoint_dir(out_uri: str, config: Config | None = None) -> Path:
    """``$WARRIORFLOW_HOME/checkpoints/<hash of the out URI>`` (pods mount a volume at WARRIORFLOW_HOME)."""
    home = os.environ.get("WARRIORFLOW_HOME")
    base = Path(home).expanduser() if home else (config.home if config is not None else Path("var"))
    return base / "checkpoints" / hashlib.sha256(out_uri.encode()).hexdigest()[:16]


def judge_template(config: Config, prompt: str) -> str:
    """The judge prompt file's text, checked for its placeholders."""
    from warriorflow.method.judging import check_template

    prompt_file = config.prompt_path(prompt)
    try:
        template = prompt_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(prompt_file), f"judge prompt cannot be read: {exc}",
                          "check arena.judge_prompt (a file in include/prompts)") from None
    check_template(template, str(prompt_file))
    return template


def check_roles(batch: BattleBatchInput, config: Config) -> None:
    """Every name in the batch must be a registered expert fit for its part."""
    for b in batch.battles:
        for name, role in ((b.attacker, Role.answer), (b.defender, Role.answer), *((j, Role.judge) for j in b.judges)):
            expert = config.registry.get(name)
            if not expert.has_role(role):
                raise ConfigError(f"expert '{name}'", f"lacks the '{role.value}' role needed in battle {b.battle_id}",
                                  f"add '{role.value}' to its roles in {config.experts_file}, or re-plan the batch")


def run_battle_batch_uri(in_uri: str, out_uri: str, config: Config, checkpoint_dir: Path | None = None,
                         progress: Progress | None = None) -> list[dict]:
    """Read the input at ``in_uri``, run it with backends from the registry, write JSONL to ``out_uri``.

    Idempotent: when ``out_uri`` exists its records are returned and nothing runs. The output is
    written in one atomic put; the checkpoint file is removed after that."""
    say = progress or quiet
    out_store, out_key = open_object_uri(out_uri, config)
    if out_store.exists(out_key):
        say(f"{out_uri} exists: nothing to do")
        return decode_jsonl(out_store.get_bytes(out_key))
    in_store, in_key = open_object_uri(in_uri, config)
    batch = BattleBatchInput.from_json(in_store.get_bytes(in_key))
    check_roles(batch, config)
    template = judge_template(config, batch.arena.judge_prompt)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(out_uri, config)
    with OpenBackends(config) as backends:
        records = run_battle_batch(batch, backends.get, ckpt_dir, template, progress)
    out_store.put_bytes(out_key, encode_jsonl(records))
    say(f"wrote {len(records)} records to {out_uri}")
    with contextlib.suppress(OSError):
        checkpoint_path(ckpt_dir, batch.to_dict(), template).unlink()
    return records
