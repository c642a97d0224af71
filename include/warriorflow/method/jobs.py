"""Jobs: every step that runs a model is cut into jobs, each over **one** model and a shard of items.

A job is a file in, a file out: the writer step before it writes the job's input (what to do, with
everything needed to do it), a worker loads the one model, does the items and writes the result
file; the writer step after it ingests the result files. A job never opens the rating store.

Steps and what one item is:

==========  =================  ===============================================================
step        model              item
==========  =================  ===============================================================
respond     answering expert   an instruction to answer (a :class:`ResponseRequest` dict)
judge       judge              a vote to cast on two finished responses (a :class:`VoteRequest`)
score       judge              an instruction to rate 1-10
tag         judge              an instruction to put in a task category
embed       embedding model    an instruction to embed
execute     none (``sandbox``) a battle whose two responses' code to run (execution evidence)
==========  =================  ===============================================================

:func:`shard` cuts each model's items into jobs of ``items_per_job`` (grown when needed so that a
step never maps more than ``max_jobs`` jobs); :class:`JobInput` is the input file, checked on read.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warriorflow.method.battle_jobs import BatchInputError

STEPS = ("respond", "judge", "score", "tag", "embed", "execute")
LLM_STEPS = ("respond", "judge", "score", "tag")
EXECUTOR = "sandbox"  # the model name of every execute job: it loads no model, it runs the sandbox
ITEM_ID = {"respond": "response_id", "judge": "vote_id", "score": "instruction_id", "tag": "instruction_id",
           "embed": "instruction_id", "execute": "battle_id"}
_S, _I = (str,), (int,)
ITEM_FIELDS = {  # what every item of a step's job must hold, and its type
    "respond": {"response_id": _S, "instruction_id": _S, "instruction": _S, "expert": _S, "seed": _I},
    "judge": {"vote_id": _S, "battle_id": _S, "judge": _S, "shown_order": _S, "instruction": _S, "first": _S,
              "second": _S},
    "score": {"instruction_id": _S, "text": _S}, "tag": {"instruction_id": _S, "text": _S},
    "embed": {"instruction_id": _S, "text": _S},
    "execute": {"battle_id": _S, "instruction": _S, "attacker": _S, "defender": _S, "attacker_response_id": _S,
                "defender_response_id": _S},
}
OPTIONAL_FIELDS = {"judge": {"execution": _S}}  # may be absent (old inputs, evidence off); typed when present
PARAMS = {"respond": {"arena": (dict,)}, "judge": {"arena": (dict,), "template": _S},
          "score": {"template": _S, "language": _S},
          "tag": {"template": _S, "categories": (list,), "language": _S, "max_tokens": _I},
          "embed": {"model_spec": _S}, "execute": {"limits": (dict,)}}
MODEL_FIELD = {"respond": "expert", "judge": "judge"}  # items that name the model they are for


@dataclass(frozen=True)
class Job:
    """What a mapped task needs to know about a job: its input key, step and model (the rest is in the file)."""

    key: str
    step: str
    model: str
    items: int

    def to_dict(self) -> dict:
        return {"key": self.key, "step": self.step, "model": self.model, "items": self.items}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Job:
        return cls(str(d["key"]), str(d["step"]), str(d["model"]), int(d["items"]))


@dataclass(frozen=True)
class JobInput:
    """A job's input file: ``{"job_id", "step", "model", "run_id", "round", "params", "items"}``."""

    job_id: str
    step: str
    model: str
    run_id: str
    params: dict = field(default_factory=dict)
    items: tuple[dict, ...] = ()
    round: int | None = None

    def to_dict(self) -> dict:
        return {"job_id": self.job_id, "step": self.step, "model": self.model, "run_id": self.run_id,
                "round": self.round, "params": self.params, "items": list(self.items)}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")

    def digest(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()[:24]

    def item_ids(self) -> list[str]:
        return [i[ITEM_ID[self.step]] for i in self.items]

    @classmethod
    def from_json(cls, data: bytes | str, where: str = "job input") -> JobInput:
        try:
            d = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BatchInputError(where, f"is not valid JSON: {exc}", "re-plan the step that wrote it") from None
        if not isinstance(d, dict):
            raise BatchInputError(where, f"must be a JSON object, not {type(d).__name__}")
        for k in ("job_id", "step", "model", "run_id"):
            if not isinstance(d.get(k), str) or not d[k]:
                raise BatchInputError(f"{where}.{k}", "must be a non-empty string")
        if d["step"] not in STEPS:
            raise BatchInputError(f"{where}.step", f"is {d['step']!r}", f"use one of {', '.join(STEPS)}")
        if d["step"] == "execute" and d["model"] != EXECUTOR:
            raise BatchInputError(f"{where}.model", f"is {d['model'][:40]!r}; an execute job runs {EXECUTOR!r}")
        if not isinstance(d.get("params"), dict):
            raise BatchInputError(f"{where}.params", "must be a JSON object")
        items = d.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BatchInputError(f"{where}.items", "must be a list of JSON objects")
        step = d["step"]
        for name, types in PARAMS[step].items():
            if not isinstance(d["params"].get(name), types) or isinstance(d["params"].get(name), bool):
                raise BatchInputError(f"{where}.params.{name}", f"must be a {types[0].__name__}",
                                      "re-plan the step that wrote this job")
        id_key = ITEM_ID[step]
        ids_ = [i.get(id_key) for i in items]
        if not all(isinstance(x, str) and x for x in ids_):
            raise BatchInputError(f"{where}.items", f"every item needs a {id_key}")
        if len(set(ids_)) != len(ids_):
            raise BatchInputError(f"{where}.items", f"repeat a {id_key}", "plan each item once")
        fields, optional = ITEM_FIELDS[step], OPTIONAL_FIELDS.get(step, {})
        for n, item in enumerate(items):
            if not set(fields) <= set(item) <= set(fields) | set(optional):
                extra = f" (and may hold {', '.join(sorted(optional))})" if optional else ""
                raise BatchInputError(f"{where}.items[{n}]", f"must hold exactly {', '.join(sorted(fields))}{extra}",
                                      "re-plan the step that wrote this job")
            for name, types in {**fields, **{k: v for k, v in optional.items() if k in item}}.items():
                if not isinstance(item[name], types) or isinstance(item[name], bool):
                    raise BatchInputError(f"{where}.items[{n}].{name}", f"must be a {types[0].__name__}")
            if step in MODEL_FIELD and item[MODEL_FIELD[step]] != d["model"]:
                raise BatchInputError(f"{where}.items[{n}]", f"is for {item[MODEL_FIELD[step]]!r}, not the job's "
                                      f"model {d['model']!r}")
        rnd = d.get("round")
        if rnd is not None and (isinstance(rnd, bool) or not isinstance(rnd, int) or rnd < 1):
            raise BatchInputError(f"{where}.round", "must be a positive integer or null")
        return cls(d["job_id"], d["step"], d["model"], d["run_id"], d["params"], tuple(items), rnd)


def shard_size(counts: Mapping[str, int], items_per_job: int, max_jobs: int) -> int:
    """The smallest shard size >= ``items_per_job`` that cuts every model's items into at most ``max_jobs``
    jobs in all (a model with items always gets at least one job)."""
    counts = {m: n for m, n in counts.items() if n > 0}
    if not counts:
        return items_per_job

    def jobs(size: int) -> int:
        return sum(math.ceil(n / size) for n in counts.values())

    if jobs(items_per_job) <= max_jobs:
        return items_per_job
    lo, hi = items_per_job, max(counts.values())
    while lo < hi:  # jobs(size) decreases as size grows
        mid = (lo + hi) // 2
        if jobs(mid) <= max(max_jobs, len(counts)):
            hi = mid
        else:
            lo = mid + 1
    return lo


def shard(items_by_model: Mapping[str, Sequence[dict]], items_per_job: int,
          max_jobs: int) -> list[tuple[str, int, list[dict]]]:
    """(model, shard number, items) for every job, models in name order."""
    size = shard_size({m: len(v) for m, v in items_by_model.items()}, items_per_job, max_jobs)
    out = []
    for model in sorted(items_by_model):
        items = list(items_by_model[model])
        for n, start in enumerate(range(0, len(items), size)):
            out.append((model, n, items[start:start + size]))
    return out


def job_id(step: str, model: str, shard_no: int, round_no: int | None = None) -> str:
    """``judge-r01-qwen-s0003``: step, round, model (made file-name safe) and shard."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.") or "model"
    return f"{step}{f'-r{round_no:02d}' if round_no else ''}-{safe}-s{shard_no:04d}"
