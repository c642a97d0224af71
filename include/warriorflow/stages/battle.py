"""The battle batch: a self-contained unit of work, file in and file out (WarriorCoder step 4).

It is exactly what one Kubernetes pod runs (``warriorflow battle-batch --in URI --out URI``); in the
embedded default the same command runs as a local process. It never opens the DuckDB store.

Input: one JSON document (``BattleBatchInput``)::

    {"run_id": "...", "arena": {ArenaSettings fields},
     "battles": [{"battle_id", "instruction_id", "instruction", "attacker", "defender",
                  "judges": [names], "battle_order": int}, ...]}

Output: JSONL, one record per line, each with a ``type``:

* ``response``: ``response_id, instruction_id, expert, text, sampling {max_tokens, temperature, top_p},
  seed, finish_reason, prompt_tokens, completion_tokens, run_id``;
* ``vote``: ``vote_id, battle_id, judge, shown_order, raw_verdict (A|B|tie|invalid),
  verdict (attacker|defender|tie|invalid), raw_text, run_id``;
* ``battle``: ``battle_id, instruction_id, attacker, defender, attacker_response_id,
  defender_response_id, battle_order, judges_asked, judge_calls, judge_calls_saved,
  effective_votes {judge: verdict}, run_id``.

Records are ordered responses (by response_id), votes (by vote_id), battles (by battle_order,
battle_id); keys are sorted. The output depends only on the input and the backends' outputs.

The work:

1. **Responses.** Each expert answers each instruction once per batch (an attacker's response is
   reused across its battles on that instruction), with a seed derived from (arena seed,
   instruction_id, expert); one batched ``chat`` call per expert.
2. **Judging.** Every (battle, judge) gets a seeded shown order (attacker_first | defender_first); in
   both-orders mode the judge is asked in both orders. All calls of a round are batched per judge
   (one ``chat`` call per judge per round), constrained to ``[[A]]``/``[[B]]``/``[[Tie]]`` and parsed
   with :func:`~warriorflow.stages.judging.parse_verdict` either way.
3. **Sequential voting** (``arena.sequential_voting``): each battle asks its judges in a seeded
   order, and stops once the remaining judges can no longer change the majority. Each round asks a
   battle's next ``k`` judges, where ``k`` is the fewest that could decide it, so it makes exactly the
   calls that asking one judge at a time would make, in fewer rounds. The battle result (sign of
   attacker votes minus defender votes) is always the full panel's.
4. **Checkpointing.** After each expert's responses and each judge's batch, the new records are
   appended to ``<checkpoint_dir>/battle-batch-<key>.jsonl`` (one JSON record per line, written then
   flushed and fsynced; ``key`` hashes the input and the judge prompt, so a checkpoint is never
   applied to other work). On start the checkpoint is loaded: finished responses and votes are not
   redone, votes are deduplicated by vote_id, and a torn last line (a kill mid-write) is cut off.
   An exclusive lock on the file stops two processes sharing one checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from warriorflow import ids
from warriorflow.config import ArenaSettings, Config, Role
from warriorflow.errors import BackendError, ConfigError, StoreError, WarriorflowError
from warriorflow.inference.base import Backend, Sampling
from warriorflow.stages import votes as V
from warriorflow.stages.judging import VERDICT_CHOICES, check_template, parse_verdict, render_judge_prompt

Progress = Callable[[str], None]
Backends = Mapping[str, Backend] | Callable[[str], Backend]

RESPONSE, VOTE, BATTLE = "response", "vote", "battle"
CHECKPOINT_PREFIX = "battle-batch-"


class BatchInputError(WarriorflowError, ValueError):
    """A battle-batch input file is malformed."""


class CheckpointError(WarriorflowError):
    """A checkpoint file is damaged (other than a torn last line) or in use by another process."""


# ------------------------------------------------------------------------------------------ input


@dataclass(frozen=True)
class PlannedBattle:
    battle_id: str
    instruction_id: str
    instruction: str
    attacker: str
    defender: str
    judges: tuple[str, ...]
    battle_order: int

    def to_dict(self) -> dict:
        return {"battle_id": self.battle_id, "instruction_id": self.instruction_id, "instruction": self.instruction,
                "attacker": self.attacker, "defender": self.defender, "judges": list(self.judges),
                "battle_order": self.battle_order}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "battle") -> PlannedBattle:
        if not isinstance(d, Mapping):
            raise BatchInputError(where, f"must be a JSON object, not {type(d).__name__}")
        need = ("battle_id", "instruction_id", "instruction", "attacker", "defender", "judges", "battle_order")
        missing = [k for k in need if k not in d]
        extra = sorted(set(d) - set(need))
        if missing or extra:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unknown {', '.join(extra)}"] if extra else [])
            raise BatchInputError(where, "; ".join(problems), "write every battle with exactly: " + ", ".join(need))
        for k in ("battle_id", "instruction_id", "instruction", "attacker", "defender"):
            if not isinstance(d[k], str) or (k != "instruction" and not d[k]):
                raise BatchInputError(f"{where}.{k}", "must be a non-empty string")
        judges = d["judges"]
        if not isinstance(judges, list) or not all(isinstance(j, str) and j for j in judges):
            raise BatchInputError(f"{where}.judges", "must be a list of expert names")
        if len(set(judges)) != len(judges):
            raise BatchInputError(f"{where}.judges", f"names a judge twice: {judges}")
        if isinstance(d["battle_order"], bool) or not isinstance(d["battle_order"], int):
            raise BatchInputError(f"{where}.battle_order", "must be an integer")
        if d["attacker"] == d["defender"]:
            raise BatchInputError(where, f"attacker and defender are both '{d['attacker']}'")
        return cls(d["battle_id"], d["instruction_id"], d["instruction"], d["attacker"], d["defender"],
                   tuple(judges), d["battle_order"])


@dataclass(frozen=True)
class BattleBatchInput:
    run_id: str
    arena: ArenaSettings
    battles: tuple[PlannedBattle, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "arena": self.arena.model_dump(mode="json"),
                "battles": [b.to_dict() for b in self.battles]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BattleBatchInput:
        if not isinstance(d, Mapping):
            raise BatchInputError("battle batch input", f"must be a JSON object, not {type(d).__name__}")
        if not isinstance(d.get("run_id"), str) or not d["run_id"]:
            raise BatchInputError("battle batch input", "run_id must be a non-empty string")
        try:
            arena = ArenaSettings.model_validate(d.get("arena") or {})
        except ValidationError as exc:
            problems = "; ".join(f"arena.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise BatchInputError("battle batch input", problems, "use the ArenaSettings fields") from None
        raw = d.get("battles")
        if not isinstance(raw, list):
            raise BatchInputError("battle batch input", "battles must be a list")
        battles = tuple(PlannedBattle.from_dict(b, f"battles[{i}]") for i, b in enumerate(raw))
        seen: dict[str, PlannedBattle] = {}
        texts: dict[str, str] = {}
        for b in battles:
            if b.battle_id in seen:
                raise BatchInputError(f"battle {b.battle_id}", "appears twice in the batch", "plan each battle once")
            seen[b.battle_id] = b
            if texts.setdefault(b.instruction_id, b.instruction) != b.instruction:
                raise BatchInputError(f"instruction {b.instruction_id}", "has two different texts in the batch")
        return cls(d["run_id"], arena, battles)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> BattleBatchInput:
        if isinstance(data, Mapping):
            return cls.from_dict(data)
        try:
            return cls.from_dict(json.loads(data))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BatchInputError("battle batch input", f"is not valid JSON: {exc}") from None

    def experts(self) -> list[str]:
        """Every expert the batch needs (competitors and judges), sorted."""
        return sorted({n for b in self.battles for n in (b.attacker, b.defender, *b.judges)})


# ------------------------------------------------------------------------------------------ seeds


def stable_int(*parts: Any, bits: int = 64) -> int:
    """An integer from a hash of ``parts``, the same in every process and Python version."""
    payload = json.dumps(parts, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "big") >> (64 - bits)


def response_seed(run_seed: int, instruction_id: str, expert: str) -> int:
    """The sampling seed of an expert's response to an instruction (31 bits: fits every backend)."""
    return stable_int("response", run_seed, instruction_id, expert, bits=31)


def response_sampling(arena: ArenaSettings) -> dict:
    return {"max_tokens": arena.response_max_tokens, "temperature": arena.response_temperature,
            "top_p": arena.response_top_p}


def shown_order(run_seed: int, battle_id: str, judge: str) -> str:
    """The seeded position order a judge sees a battle in (one-order mode)."""
    rng = random.Random(stable_int("shown_order", run_seed, battle_id, judge))
    return V.ATTACKER_FIRST if rng.random() < 0.5 else V.DEFENDER_FIRST


def judge_order(run_seed: int, battle: PlannedBattle) -> list[str]:
    """The seeded order in which a battle's judges are asked (sequential voting reads it front first)."""
    order = sorted(battle.judges)
    random.Random(stable_int("judge_order", run_seed, battle.battle_id)).shuffle(order)
    return order


def shown_orders(arena: ArenaSettings, battle_id: str, judge: str) -> tuple[str, ...]:
    if arena.both_orders:
        return (V.ATTACKER_FIRST, V.DEFENDER_FIRST)
    return (shown_order(arena.seed, battle_id, judge),)


def judges_needed(effective: Sequence[str], remaining: int) -> int:
    """The fewest further judges that could decide the majority (0 when already decided or none left)."""
    if remaining <= 0 or V.majority_decided(effective, remaining):
        return 0
    margin = abs(effective.count(V.ATTACKER) - effective.count(V.DEFENDER))
    return min(remaining, (remaining - margin) // 2 + 1)


# ------------------------------------------------------------------------------------------ checkpoint


def _line(record: Mapping) -> bytes:
    # ASCII JSON: any text (even a lone surrogate from a cut-off multibyte token) round-trips exactly
    return (json.dumps(record, sort_keys=True) + "\n").encode("ascii")


def records_to_jsonl(records: Iterable[Mapping]) -> bytes:
    return b"".join(_line(r) for r in records)


def read_records(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def checkpoint_key(batch: BattleBatchInput, template: str) -> str:
    blob = json.dumps([batch.to_dict(), template], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


class Checkpoint:
    """Append-only JSONL of finished response and vote records, locked while open."""

    def __init__(self, path: Path):
        self.path = path
        self.responses: dict[str, dict] = {}
        self.votes: dict[str, dict] = {}
        self.cut_bytes = 0  # torn tail removed on load
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self._fh = open(path, "ab+")  # noqa: SIM115 - held open (and locked) for the whole batch
        if new:  # make the new directory entry durable too
            with contextlib.suppress(OSError):
                dir_fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise CheckpointError(str(path), "is locked by another battle-batch process",
                                  "wait for it to finish, or give this batch its own checkpoint dir") from None
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        self._fh.seek(0)
        data = self._fh.read()
        end = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
        lines = data[:end].split(b"\n")[:-1]
        good = end
        for i, raw in enumerate(lines):
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or record.get("type") not in (RESPONSE, VOTE):
                    raise ValueError("not a response or vote record")
                key = record["response_id"] if record["type"] == RESPONSE else record["vote_id"]
            except (ValueError, KeyError, UnicodeDecodeError) as exc:
                if i == len(lines) - 1:  # a damaged final line: drop it like a torn one
                    good = end - len(raw) - 1
                    break
                raise CheckpointError(f"{self.path} line {i + 1}", f"is not a checkpoint record ({exc})",
                                      "delete the checkpoint file to redo the batch from the start") from None
            (self.responses if record["type"] == RESPONSE else self.votes).setdefault(key, record)
        if good < len(data):
            self.cut_bytes = len(data) - good
            self._fh.truncate(good)
            self._sync()

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, records: Sequence[dict]) -> None:
        """Append records not yet present (by response_id / vote_id), then flush and fsync."""
        fresh = []
        for r in records:
            store, key = (self.responses, r["response_id"]) if r["type"] == RESPONSE else (self.votes, r["vote_id"])
            if key not in store:
                store[key] = r
                fresh.append(r)
        if fresh:
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(records_to_jsonl(fresh))
            self._sync()

    def close(self) -> None:
        if not self._fh.closed:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()


def checkpoint_path(checkpoint_dir: Path, batch: BattleBatchInput, template: str) -> Path:
    return Path(checkpoint_dir) / f"{CHECKPOINT_PREFIX}{checkpoint_key(batch, template)}.jsonl"


# ------------------------------------------------------------------------------------------ the batch


class _BackendPool:
    """Backends by expert name, from a mapping or built lazily (once each) by a factory."""

    def __init__(self, backends: Backends):
        self._source = backends
        self._cache: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        if name not in self._cache:
            if isinstance(self._source, Mapping):
                if name not in self._source:
                    raise ConfigError(f"expert '{name}'", "has no backend in this battle batch",
                                      f"known: {', '.join(sorted(self._source)) or '(none)'}")
                self._cache[name] = self._source[name]
            else:
                self._cache[name] = self._source(name)
        return self._cache[name]

    def check(self, names: Iterable[str]) -> None:
        if isinstance(self._source, Mapping):
            for name in names:
                self.get(name)

    def built(self) -> list[Backend]:
        return list(self._cache.values())


def _chat(backend: Backend, name: str, conversations: list, sampling) -> list:
    gens = backend.chat(conversations, sampling)
    if len(gens) != len(conversations):
        raise BackendError(f"expert '{name}'", f"returned {len(gens)} generations for {len(conversations)} prompts",
                           "the backend breaks the batched protocol")
    return gens


@dataclass
class _Request:
    battle: PlannedBattle
    judge: str
    order: str
    vote_id: str


def run_battle_batch(batch: BattleBatchInput, backends: Backends, checkpoint_dir: Path, template: str,
                     progress: Progress | None = None) -> list[dict]:
    """Run (or resume) a battle batch; return its output records (see the module doc for formats)."""
    say = progress or (lambda _msg: None)
    check_template(template)
    arena, run_id = batch.arena, batch.run_id
    pool = _BackendPool(backends)
    pool.check(batch.experts())  # a missing name fails before any work
    ckpt = Checkpoint(checkpoint_path(checkpoint_dir, batch, template))
    try:
        if ckpt.responses or ckpt.votes or ckpt.cut_bytes:
            say(f"resuming from {ckpt.path.name}: {len(ckpt.responses)} responses, {len(ckpt.votes)} votes"
                + (f" (cut a torn tail of {ckpt.cut_bytes} bytes)" if ckpt.cut_bytes else ""))
        response_ids = _responses(batch, pool, ckpt, say)
        asked = _judging(batch, pool, ckpt, template, response_ids, say)
    finally:
        ckpt.close()

    vote_records = []
    battle_records = []
    for b in batch.battles:
        effective = {}
        for judge in asked[b.battle_id]:
            mine = [ckpt.votes[ids.vote_id(b.battle_id, judge, o)] for o in shown_orders(arena, b.battle_id, judge)]
            vote_records += mine
            effective[judge] = V.effective_vote([v["verdict"] for v in mine])
        calls = sum(len(shown_orders(arena, b.battle_id, j)) for j in asked[b.battle_id])
        full = len(b.judges) * (2 if arena.both_orders else 1)
        battle_records.append({
            "type": BATTLE, "battle_id": b.battle_id, "instruction_id": b.instruction_id,
            "attacker": b.attacker, "defender": b.defender,
            "attacker_response_id": response_ids[(b.instruction_id, b.attacker)],
            "defender_response_id": response_ids[(b.instruction_id, b.defender)],
            "battle_order": b.battle_order, "judges_asked": list(asked[b.battle_id]),
            "judge_calls": calls, "judge_calls_saved": full - calls, "effective_votes": effective, "run_id": run_id,
        })
    responses = [ckpt.responses[rid] for rid in sorted(set(response_ids.values()))]
    vote_records.sort(key=lambda v: v["vote_id"])
    battle_records.sort(key=lambda r: (r["battle_order"], r["battle_id"]))
    say(f"done: {len(responses)} responses, {len(vote_records)} votes, {len(battle_records)} battles")
    return responses + vote_records + battle_records


def _responses(batch: BattleBatchInput, pool: _BackendPool, ckpt: Checkpoint, say: Progress) -> dict:
    """Generate the missing responses, one batched chat call per expert. Returns {(iid, expert): rid}."""
    arena = batch.arena
    sampling = response_sampling(arena)
    texts = {b.instruction_id: b.instruction for b in batch.battles}
    needed: dict[str, set[str]] = defaultdict(set)
    for b in batch.battles:
        needed[b.attacker].add(b.instruction_id)
        needed[b.defender].add(b.instruction_id)
    rids: dict[tuple[str, str], str] = {}
    for expert in sorted(needed):
        todo = []
        for iid in sorted(needed[expert]):
            seed = response_seed(arena.seed, iid, expert)
            rid = ids.response_id(iid, expert, sampling, seed)
            rids[(iid, expert)] = rid
            if rid not in ckpt.responses:
                todo.append((iid, seed, rid))
        if not todo:
            continue
        say(f"responses: {expert} answers {len(todo)} instruction(s)")
        convs = [[{"role": "user", "content": texts[iid]}] for iid, _, _ in todo]
        samp = [Sampling(max_tokens=arena.response_max_tokens, temperature=arena.response_temperature,
                         top_p=arena.response_top_p, seed=seed) for _, seed, _ in todo]
        gens = _chat(pool.get(expert), expert, convs, samp)
        ckpt.append([{
            "type": RESPONSE, "response_id": rid, "instruction_id": iid, "expert": expert, "text": g.text,
            "sampling": dict(sampling), "seed": seed, "finish_reason": g.finish_reason,
            "prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens, "run_id": batch.run_id,
        } for (iid, seed, rid), g in zip(todo, gens)])
    return rids


def _judging(batch: BattleBatchInput, pool: _BackendPool, ckpt: Checkpoint, template: str,
             rids: dict, say: Progress) -> dict[str, list[str]]:
    """Ask the judges in rounds; returns {battle_id: judges asked, in order}."""
    arena = batch.arena
    judge_sampling = Sampling(max_tokens=arena.judge_max_tokens, temperature=0.0, choices=VERDICT_CHOICES)
    orders = {b.battle_id: judge_order(arena.seed, b) for b in batch.battles}
    asked: dict[str, list[str]] = {b.battle_id: [] for b in batch.battles}
    open_battles = list(batch.battles)
    rnd = 0
    while open_battles:
        per_judge: dict[str, list[_Request]] = defaultdict(list)
        still_open = []
        for b in open_battles:
            panel = orders[b.battle_id]
            done = asked[b.battle_id]
            if arena.sequential_voting:
                effective = [_effective(ckpt, arena, b.battle_id, j) for j in done]
                k = judges_needed(effective, len(panel) - len(done))
            else:
                k = len(panel) - len(done)
            if k == 0:
                continue
            still_open.append(b)
            for judge in panel[len(done):len(done) + k]:
                for order in shown_orders(arena, b.battle_id, judge):
                    per_judge[judge].append(_Request(b, judge, order, ids.vote_id(b.battle_id, judge, order)))
        for judge in sorted(per_judge):
            todo = [r for r in per_judge[judge] if r.vote_id not in ckpt.votes]
            if not todo:
                continue
            say(f"judging round {rnd + 1}: {judge} casts {len(todo)} vote(s)")
            convs = [_judge_conversation(template, r, ckpt, rids) for r in todo]
            gens = _chat(pool.get(judge), judge, convs, judge_sampling)
            records = []
            for r, g in zip(todo, gens):
                raw = parse_verdict(g.text)
                records.append({"type": VOTE, "vote_id": r.vote_id, "battle_id": r.battle.battle_id, "judge": judge,
                                "shown_order": r.order, "raw_verdict": raw, "verdict": V.to_competitor(raw, r.order),
                                "raw_text": g.text, "run_id": batch.run_id})
            ckpt.append(records)
        for requests in per_judge.values():
            for r in requests:
                if r.judge not in asked[r.battle.battle_id]:
                    asked[r.battle.battle_id].append(r.judge)
        for b in still_open:  # keep the panel order in judges_asked
            asked[b.battle_id].sort(key=orders[b.battle_id].index)
        open_battles = still_open if arena.sequential_voting else []
        rnd += 1
    return asked


def _effective(ckpt: Checkpoint, arena: ArenaSettings, battle_id: str, judge: str) -> str:
    return V.effective_vote([ckpt.votes[ids.vote_id(battle_id, judge, o)]["verdict"]
                             for o in shown_orders(arena, battle_id, judge)])


def _judge_conversation(template: str, r: _Request, ckpt: Checkpoint, rids: dict) -> list[dict]:
    b = r.battle
    att = ckpt.responses[rids[(b.instruction_id, b.attacker)]]["text"]
    dfd = ckpt.responses[rids[(b.instruction_id, b.defender)]]["text"]
    first, second = (att, dfd) if r.order == V.ATTACKER_FIRST else (dfd, att)
    return render_judge_prompt(template, b.instruction, first, second)


# ------------------------------------------------------------------------------------------ URIs


def split_object_uri(uri: str) -> tuple[str, str]:
    """A full object URI -> (store root URI, key): the key is the last path segment.

    ``s3://bucket/a/b/out.jsonl`` -> (``s3://bucket/a/b``, ``out.jsonl``); ``file:///x/y.json`` and plain
    paths (relative ones resolve against the working directory) -> (``file:///x``, ``y.json``)."""
    if not isinstance(uri, str) or not uri.strip():
        raise StoreError("object URI", "is empty", "use s3://bucket/prefix/name.json, file:///path or a path")
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        path = parsed.path.strip("/")
        if not parsed.netloc or not path:
            raise StoreError(f"object URI {uri!r}", "names no object", "use s3://bucket/prefix/name.json")
        parent, _, key = path.rpartition("/")
        return f"s3://{parsed.netloc}" + (f"/{parent}" if parent else ""), key
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"object URI {uri!r}", f"names a remote host {parsed.netloc!r}", "use file:///abs/path")
        from urllib.parse import unquote

        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise StoreError(f"object URI {uri!r}", f"unsupported scheme {parsed.scheme!r}",
                         "use s3://bucket/prefix/name.json, file:///path or a path")
    else:
        path = Path(uri).expanduser()
    path = path.resolve()
    if uri.endswith("/") or not path.name:
        raise StoreError(f"object URI {uri!r}", "names a directory, not an object", "end the URI with a file name")
    return path.parent.as_uri(), path.name


def _open_store(root: str, config: Config | None):
    from warriorflow.store.object_store import object_store_from_uri

    options = {}
    if config is not None and root.startswith("s3://"):
        s3 = config.settings.object_store.s3
        options = {k: v for k, v in {"endpoint_url": s3.endpoint_url, "region": s3.region,
                                     "addressing_style": s3.addressing_style}.items() if v is not None}
    return object_store_from_uri(root, **options)


def default_checkpoint_dir(out_uri: str, config: Config | None = None) -> Path:
    """``$WARRIORFLOW_HOME/checkpoints/<hash of the out URI>`` (pods mount a volume at WARRIORFLOW_HOME)."""
    home = os.environ.get("WARRIORFLOW_HOME")
    base = Path(home).expanduser() if home else (config.home if config is not None else Path("var"))
    return base / "checkpoints" / hashlib.sha256(out_uri.encode()).hexdigest()[:16]


def run_battle_batch_uri(in_uri: str, out_uri: str, config: Config, checkpoint_dir: Path | None = None,
                         progress: Progress | None = None) -> list[dict]:
    """Read the input at ``in_uri``, run it with backends from the registry, write JSONL to ``out_uri``.

    Idempotent: when ``out_uri`` exists its records are returned and nothing runs. The output is
    written in one atomic put; the checkpoint file is removed after that."""
    say = progress or (lambda _msg: None)
    out_root, out_key = split_object_uri(out_uri)
    out_store = _open_store(out_root, config)
    if out_store.exists(out_key):
        say(f"{out_uri} exists: nothing to do")
        return read_records(out_store.get_bytes(out_key))
    in_root, in_key = split_object_uri(in_uri)
    batch = BattleBatchInput.from_json(_open_store(in_root, config).get_bytes(in_key))
    for b in batch.battles:  # every name must be a registered expert fit for its part
        for name, role in ((b.attacker, Role.answer), (b.defender, Role.answer), *((j, Role.judge) for j in b.judges)):
            expert = config.registry.get(name)
            if not expert.has_role(role):
                raise ConfigError(f"expert '{name}'", f"lacks the '{role.value}' role needed in battle {b.battle_id}",
                                  f"add '{role.value}' to its roles in {config.experts_file}, or re-plan the batch")
    prompt_file = config.prompt_path(batch.arena.judge_prompt)
    try:
        template = prompt_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(prompt_file), f"judge prompt cannot be read: {exc}",
                          "check arena.judge_prompt (a file in include/prompts)") from None
    check_template(template, str(prompt_file))

    from warriorflow.inference.factory import backend_for

    built: list[Backend] = []

    def factory(name: str) -> Backend:
        backend = backend_for(config.registry.get(name), config)
        built.append(backend)
        return backend

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(out_uri, config)
    try:
        records = run_battle_batch(batch, factory, ckpt_dir, template, progress)
    finally:
        for backend in built:
            with contextlib.suppress(Exception):
                backend.close()
    out_store.put_bytes(out_key, records_to_jsonl(records))
    say(f"wrote {len(records)} records to {out_uri}")
    with contextlib.suppress(OSError):
        checkpoint_path(ckpt_dir, batch, template).unlink()
    return records
