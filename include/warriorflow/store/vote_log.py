"""Reading the vote log: the completed battles in recorded order, each with one effective vote per judge.

Ratings are a pure function of this log; its hash versions them (``log_version``). The log is built in DuckDB
(:func:`open_log`, the SQL in ``sql/queries/log_*.sql``): the rate and gold steps read it as counts and as
NumPy arrays streamed in battle order, the report and the status page as :class:`BattleVotes` objects
(:func:`vote_log`), both from the same tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from warriorflow.config import ArenaSettings
from warriorflow.errors import StoreError
from warriorflow.method.battle_jobs import vote_rule
from warriorflow.method.rating import (
    BattleTable,
    BattleVotes,
    ResponseScore,
    ScoreSums,
    battle_result,
    battles_from_records,
    elo_fold_arrays,
    log_record,
    result_of,
    score_sums,
    vote_tallies,
)
from warriorflow.method.votes import EXECUTION_JUDGE, PROB_FLOOR, CastVote
from warriorflow.store.jsonl import JSONLError, encode_line, iter_jsonl
from warriorflow.store.rating_store import RatingStore, load_query


def cast_vote(row: Mapping) -> CastVote:
    """A votes row (verdict, shown_order, p_a, p_b, p_tie) as a :class:`CastVote`."""
    probs = (row["p_a"], row["p_b"], row["p_tie"])
    return CastVote(row["verdict"], row["shown_order"], None if any(p is None for p in probs) else probs)


def judge_priors(store: RatingStore) -> dict[str, float]:
    """Each judge's first-position prior over all its stored probabilistic votes (``votes.first_position_prior``),
    aggregated in DuckDB."""
    floor = PROB_FLOOR
    rows = store.query(
        "SELECT judge, avg(ln(greatest(p_a, ?)) - ln(greatest(p_b, ?))) AS beta FROM votes "
        "WHERE p_a IS NOT NULL AND p_b IS NOT NULL GROUP BY judge ORDER BY judge", [floor, floor])
    return {r["judge"]: float(r["beta"]) for r in rows}


def calibrated_weights(store: RatingStore) -> dict[str, float]:
    """Each judge's accuracy in its latest calibration (``warriorflow judges calibrate``)."""
    rows = store.query(
        "SELECT judge, accuracy FROM judge_calibrations c WHERE judge <> 'panel' AND accuracy IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY judge ORDER BY created_at DESC, calibration_id) = 1")
    return {r["judge"]: float(r["accuracy"]) for r in rows}


LOG_BATCH = 1 << 18  # battles per Arrow record batch when the log is streamed
_PARAM = re.compile(r"\$([a-z_]+)")
_LOG_TABLES = ("_wf_log_results", "_wf_log_votes", "_wf_log_names", "_wf_log_judges", "_wf_log_experts",
               "_wf_log_battles", "_wf_log_slots", "_wf_log_patterns", "_wf_log_meanings", "_wf_log_slot_base")


def run_script(store: RatingStore, name: str, params: Mapping[str, Any] | None = None) -> None:
    """Run the statements of the named query file ``sql/queries/<name>.sql`` in order, each with the ``$name``
    parameters it uses."""
    params = params or {}
    for statement in (x.strip() for x in re.split(r";\s*\n", load_query(name))):
        body = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()
        if body:
            store.con.execute(body, {k: params[k] for k in dict.fromkeys(_PARAM.findall(body))})


MAX_SLOTS = 54  # judge slots a DECIMAL(38,0) vote pattern holds: 5^54 > 10^38 > 5^53
_CODES = {1: "attacker", 2: "defender", 3: "tie", 4: "invalid"}


def pattern_votes(pattern: int, slots: Sequence[tuple[str, float, bool]]
                  ) -> tuple[dict[str, str], dict[str, float] | None]:
    """A vote pattern (sql/queries/log_patterns.sql) as a battle's votes mapping and weights (None when no weight
    is recorded): ``slots`` are (judge, weight, whether the weight is recorded) in the order of the battle's votes
    mapping (judges by name, then the added execution vote)."""
    votes: dict[str, str] = {}
    weights: dict[str, float] = {}
    rest = pattern
    for name, weight, recorded in slots:
        rest, code = divmod(rest, 5)
        if code:
            votes[name] = _CODES[code]
            if recorded:
                weights[name] = weight
    return votes, weights or None


def pattern_meaning(pattern: int, slots: Sequence[tuple[str, float, bool]]) -> dict[str, Any]:
    """What a battle's vote pattern means, by the method's own functions (``rating.vote_tallies``,
    ``rating.result_of``: those ``battle_result`` decides by), and its votes and weights as the version's JSON."""
    votes, weights = pattern_votes(pattern, slots)
    t_a, t_b = vote_tallies(votes, weights)
    return {"pattern": pattern, "t_a": t_a, "t_b": t_b, "s": result_of(t_a, t_b),
            "n_invalid": sum(v == "invalid" for v in votes.values()), "has_execution": EXECUTION_JUDGE in votes,
            "votes_json": json.dumps(votes, sort_keys=True),
            "weights_json": json.dumps(weights, sort_keys=True) if weights else None}


@dataclass(eq=False)
class Log:
    """The vote log, built in DuckDB temporary tables of the store's connection by :func:`open_log`: the
    completed battles in recorded order (``pos``), each judge's effective vote on each (method/votes.py, in
    SQL) and one row per battle with its weighted tallies, result and line of the version hash. Nothing of it
    is held in Python; it is read as counts and streamed as NumPy arrays in battle order.

    ``experts``: the names in the log, sorted; the ``a`` / ``d`` indices of the arrays point into it."""

    store: RatingStore
    experts: tuple[str, ...]
    n_battles: int
    judge_slots: list[tuple[str, float, bool]] = field(default_factory=list)  # see pattern_votes
    saved_version: str | None = None  # the version of a saved log read back (open_saved_log)

    def batches(self, sql: str, params: Sequence[Any] = (), rows: int = LOG_BATCH) -> Iterator[dict[str, np.ndarray]]:
        """``sql``'s result, a record batch at a time, as NumPy arrays by column."""
        reader = self.store.stream(sql, list(params), rows)
        for batch in reader:
            yield {name: batch.column(i).to_numpy(zero_copy_only=False) for i, name in enumerate(batch.schema.names)}

    def results(self, columns: str = "a, d, s", rows: int = LOG_BATCH) -> Iterator[dict[str, np.ndarray]]:
        """Columns of the per-battle results (pos, battle_id, instruction_id, a, d, t_a, t_b, s, n_invalid,
        has_execution), in battle order."""
        return self.batches(f"SELECT {columns} FROM _wf_log_results ORDER BY pos", rows=rows)

    def version(self) -> str:
        """The rating version: the hash :func:`log_version` gives the same log, computed over the battles'
        lines streamed in order (never the whole log as one text)."""
        if self.saved_version is not None:
            return self.saved_version
        digest = hashlib.sha256(b"[")
        first = True
        reader = self.store.stream("SELECT q_battle, tail, battle_id FROM _wf_log_results ORDER BY pos", rows=LOG_BATCH)
        for batch in reader:
            heads, tails, ids_ = (batch.column(i).to_pylist() for i in range(3))
            text = ", ".join((h if h is not None else "[" + json.dumps(b)) + t for h, t, b in zip(heads, tails, ids_))
            if text:
                digest.update((text if first else ", " + text).encode())
                first = False
        digest.update(b"]")
        return digest.hexdigest()[:16]

    def cells(self) -> BattleTable:
        """The (attacker, defender, result) count table of the log, counted in SQL."""
        rows = self.store.query("SELECT a, d, s, count(*) AS n FROM _wf_log_results GROUP BY a, d, s ORDER BY a, d, s")
        return BattleTable.from_counts(np.array([r["a"] for r in rows], dtype=np.int64),
                                       np.array([r["d"] for r in rows], dtype=np.int64),
                                       np.array([float(r["s"]) for r in rows]),
                                       np.array([r["n"] for r in rows], dtype=np.int64), self.experts)

    def battles_per_expert(self) -> dict[str, int]:
        rows = self.store.query("SELECT e.name, count(*) AS n FROM _wf_log_results r "
                                "JOIN _wf_log_experts e ON e.idx IN (r.a, r.d) GROUP BY e.name")
        return {r["name"]: int(r["n"]) for r in rows}

    def counts(self) -> dict[str, int]:
        """What :func:`vote_counts` says of the log, plus its invalid effective votes."""
        r = self.store.query("SELECT count(*) AS battles, count(*) FILTER (WHERE s <> 0.5) AS decisive, "
                             "count(*) FILTER (WHERE has_execution) AS execution, "
                             "coalesce(sum(n_invalid), 0) AS invalid FROM _wf_log_results")[0]
        return {"battles": int(r["battles"]), "decisive_battles": int(r["decisive"]),
                "execution_votes": int(r["execution"]), **_stored_vote_kinds(self.store),
                "invalid_effective_votes": int(r["invalid"])}

    def elo(self, k: float, initial: float) -> dict[str, float]:
        """Sequential Elo (:func:`~warriorflow.method.rating.elo_fold`) over the battles streamed in order."""
        return elo_fold_arrays(((c["a"], c["d"], c["s"]) for c in self.results()), self.experts, k=k,
                               initial=initial)

    def slots(self) -> int:
        """Number the (instruction, expert) pairs that fought on an instruction (a response to score):
        ``_wf_log_slots`` (instruction_id, expert, slot, ins: the instruction's number), both in sorted order."""
        run_script(self.store, "log_slots")
        return int(self.store.query("SELECT count(*) AS n FROM _wf_log_slots")[0]["n"])

    def score_sums(self, elo: Mapping[str, float], alpha: float) -> ScoreSums:
        """Every response's final-score sums over its battles (:func:`~warriorflow.method.rating.score_sums`),
        indexed by slot (:meth:`slots`), from the battles streamed in order."""
        missing = [e for e in self.experts if e not in elo]
        if missing:
            first = self.store.query("SELECT battle_id, attacker, defender FROM _wf_log_battles "
                                     "WHERE attacker IN (SELECT unnest(?)) OR defender IN (SELECT unnest(?)) "
                                     "ORDER BY pos LIMIT 1", [missing, missing])[0]
            name = first["attacker"] if first["attacker"] in missing else first["defender"]
            raise ValueError(f"battle {first['battle_id']!r}: no Elo rating for expert {name!r}")
        n_slots = self.slots()
        chunks = ((c["a"], c["d"], c["t_a"], c["t_b"], c["sa"], c["sd"]) for c in self.batches(
            "SELECT r.a, r.d, r.t_a, r.t_b, sa.slot AS sa, sd.slot AS sd FROM _wf_log_results r "
            "JOIN _wf_log_slots sa ON sa.instruction_id = r.instruction_id AND sa.e = r.a "
            "JOIN _wf_log_slots sd ON sd.instruction_id = r.instruction_id AND sd.e = r.d ORDER BY r.pos"))
        return score_sums(chunks, [elo[e] for e in self.experts], n_slots, alpha)

    def response_scores(self, elo: Mapping[str, float], alpha: float = 0.7) -> dict[str, dict[str, ResponseScore]]:
        """:func:`~warriorflow.method.rating.response_scores` of the log, as objects (tests, small logs)."""
        if not self.n_battles:
            return {}
        sums = self.score_sums(elo, alpha)
        out: dict[str, dict[str, ResponseScore]] = {}
        for r in self.store.query("SELECT instruction_id, expert, slot FROM _wf_log_slots ORDER BY slot"):
            i = r["slot"]
            out.setdefault(r["instruction_id"], {})[r["expert"]] = ResponseScore(
                float(sums.final[i]), float(sums.elo_expectation[i]), float(sums.local[i]), int(sums.battles[i]))
        return out

    def save(self, version: str, fingerprint: str) -> None:
        """Keep this log (its experts and each battle's tallies) for the gold step, under its version and input
        fingerprint, replacing the log saved before."""
        with self.store.transaction():
            self.store.con.execute("DELETE FROM rating_log_battles")
            self.store.con.execute("DELETE FROM rating_logs")
            self.store.con.execute("INSERT INTO rating_logs (rating_version, fingerprint, experts, n_battles) "
                                   "VALUES (?, ?, ?, ?)", [version, fingerprint, list(self.experts), self.n_battles])
            self.store.con.execute("INSERT INTO rating_log_battles SELECT ?, pos, battle_id, a, d, t_a, t_b "
                                   "FROM _wf_log_results ORDER BY pos", [version])

    def close(self) -> None:
        for table in _LOG_TABLES:
            self.store.con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _stored_vote_kinds(store: RatingStore) -> dict[str, int]:
    kinds = store.query("SELECT count(*) FILTER (WHERE p_a IS NOT NULL) AS probabilistic, "
                        "count(*) FILTER (WHERE p_a IS NULL) AS discrete FROM votes")[0]
    return {"probabilistic_votes": int(kinds["probabilistic"] or 0), "discrete_votes": int(kinds["discrete"] or 0)}


def _register_table(store: RatingStore, name: str, columns: Mapping[str, tuple[Any, list]]) -> None:
    """A small temporary table from Python lists: ``{column: (arrow type, values)}``."""
    import pyarrow as pa

    source = pa.table({c: pa.array(v, type=t) for c, (t, v) in columns.items()})
    view = f"{name}_src"
    store.register(view, source)
    try:
        store.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {view}")
    finally:
        store.unregister(view)


@contextlib.contextmanager
def open_log(store: RatingStore, arena: ArenaSettings | None = None) -> Iterator[Log]:
    """Build the vote log in DuckDB (see :class:`Log`) under ``arena``'s vote rules; drop it on exit.

    A judge's effective vote follows ``arena.votes`` (method/votes.py): probabilistic votes are decided by
    the judge's debiased preference and the margin, discrete ones by agreement. With ``judge_weights:
    calibrated`` each judge's vote carries its calibrated accuracy as weight; the execution vote
    (``arena.execution.vote``) joins as judge ``execution`` with its weight."""
    import pyarrow as pa

    arena = arena or ArenaSettings()
    rule = vote_rule(arena)
    priors = judge_priors(store) if rule.enabled and rule.debias else {}
    calibrated = calibrated_weights(store) if arena.votes.judge_weights == "calibrated" else {}
    ex = arena.execution
    judges = [r["judge"] for r in store.query("SELECT DISTINCT judge FROM votes ORDER BY judge")]
    log = Log(store, (), 0)
    try:
        run_script(store, "log_battles")
        names = sorted(set(judges) | {EXECUTION_JUDGE})  # the judges in Python's order: k = 1, 2, ...
        k_of = {name: k for k, name in enumerate(names, start=1)}
        betas = [priors.get(j, 0.0) for j in judges]
        _register_table(store, "_wf_log_judges", {
            "judge": (pa.string(), judges),
            "ea": (pa.float64(), [math.exp(-beta / 2) for beta in betas]),  # as votes.debias computes them
            "eb": (pa.float64(), [math.exp(beta / 2) for beta in betas]),
            "k": (pa.int32(), [k_of[j] for j in judges])})
        run_script(store, "log_votes", {"floor": PROB_FLOOR, "probabilistic": rule.enabled, "margin": rule.margin})
        if ex.enabled and ex.vote:
            run_script(store, "log_execution_votes", {"k": k_of[EXECUTION_JUDGE]})
        experts = [r["name"] for r in store.query("SELECT name FROM _wf_log_experts ORDER BY idx")]
        store.con.execute("ALTER TABLE _wf_log_experts ADD COLUMN q VARCHAR")
        _register_table(store, "_wf_log_names", {"name": (pa.string(), experts),
                                                  "q": (pa.string(), [json.dumps(n) for n in experts])})
        store.con.execute("UPDATE _wf_log_experts e SET q = n.q FROM _wf_log_names n WHERE n.name = e.name")
        # the slots: judge names in Python's order, then the added execution vote
        slots = [(name, calibrated.get(name, 1.0), name in calibrated) for name in names]
        slots.append((EXECUTION_JUDGE, float(ex.vote_weight), ex.vote_weight != 1.0))
        if len(slots) > MAX_SLOTS:
            raise StoreError(f"the vote log's {len(names)} judges", f"are more than the {MAX_SLOTS - 1} a vote pattern "
                             "holds", "rate with fewer judges (the registry's judge role)")
        _register_table(store, "_wf_log_slot_base", {
            "slot": (pa.int32(), list(range(1, len(slots) + 1))),
            "base": (pa.decimal128(38, 0), [Decimal(5) ** i for i in range(len(slots))])})
        run_script(store, "log_patterns", {"n_names": len(names)})
        patterns = [int(r["pattern"]) for r in store.query("SELECT DISTINCT pattern FROM _wf_log_patterns")]
        meanings = [pattern_meaning(p, slots) for p in sorted(set(patterns) | {0})]
        _register_table(store, "_wf_log_meanings", {
            "pattern": (pa.decimal128(38, 0), [Decimal(m["pattern"]) for m in meanings]),
            **{c: (t, [m[c] for m in meanings]) for c, t in (
                ("t_a", pa.float64()), ("t_b", pa.float64()), ("s", pa.float64()), ("n_invalid", pa.int32()),
                ("has_execution", pa.bool_()), ("votes_json", pa.string()), ("weights_json", pa.string()))}})
        run_script(store, "log_results")
        n = store.query("SELECT count(*) AS n FROM _wf_log_battles")[0]["n"]
        log = Log(store, tuple(experts), int(n), slots)
        yield log
    finally:
        log.close()


LOG_FORMAT = 1  # bump when what the log SQL computes changes: saved logs of another format are not reused


def log_fingerprint(store: RatingStore, arena: ArenaSettings | None = None) -> str:
    """A hash of everything the vote log is built from (the votes, battles, executions and calibrations as
    sql/queries/log_fingerprint.sql sums them up, the vote and execution rules, the log format): equal
    fingerprints, equal logs. One scan of each table, instead of building the log."""
    arena = arena or ArenaSettings()
    inputs = store.named("log_fingerprint")[0]["inputs"]
    rules = json.dumps({"votes": arena.votes.model_dump(mode="json"), "execution": {
        k: getattr(arena.execution, k) for k in ("enabled", "vote", "vote_weight")}, "format": LOG_FORMAT},
        sort_keys=True)
    return hashlib.sha256(f"{inputs}|{rules}".encode()).hexdigest()[:32]


@contextlib.contextmanager
def open_saved_log(store: RatingStore, fingerprint: str) -> Iterator[Log | None]:
    """The log the rate step saved (:meth:`Log.save`) if its fingerprint is ``fingerprint`` (nothing it is built
    from changed since), as the tables the gold step reads (its version, experts, battles, tallies); else None."""
    saved = store.query("SELECT rating_version, experts, n_battles FROM rating_logs WHERE fingerprint = ?",
                        [fingerprint])
    if not saved:
        yield None
        return
    log = Log(store, tuple(saved[0]["experts"]), int(saved[0]["n_battles"]),
              saved_version=saved[0]["rating_version"])
    try:
        run_script(store, "log_saved", {"version": log.saved_version})
        yield log
    finally:
        log.close()


def vote_log(store: RatingStore, arena: ArenaSettings | None = None) -> list[BattleVotes]:
    """The completed battles in recorded order, each with one effective vote per judge (see :func:`open_log`),
    as :class:`BattleVotes` objects: for the report, the status page and the exports. The rate and gold steps
    read the same log as counts and arrays, never as objects."""
    with open_log(store, arena) as log:
        rows = store.query("SELECT b.battle_id, b.instruction_id, b.attacker, b.defender, "
                           "coalesce(p.pattern, 0) AS pattern FROM _wf_log_battles b "
                           "LEFT JOIN _wf_log_patterns p USING (pos) ORDER BY b.pos")
        slots = log.judge_slots
    decoded: dict[int, tuple[dict[str, str], dict[str, float] | None]] = {}
    out = []
    for b in rows:
        pattern = int(b["pattern"])
        if pattern not in decoded:
            decoded[pattern] = pattern_votes(pattern, slots)
        votes, weights = decoded[pattern]
        out.append(BattleVotes(b["battle_id"], b["instruction_id"], b["attacker"], b["defender"], dict(votes),
                               dict(weights) if weights else None))
    return out


def vote_counts(store: RatingStore, log_: Sequence[BattleVotes]) -> dict[str, int]:
    """What the rate step and the report say of a log: its battles, the decisive ones, those with an execution
    vote, and the stored votes with and without probabilities."""
    return {"battles": len(log_), "decisive_battles": sum(battle_result(b) != 0.5 for b in log_),
            "execution_votes": sum(EXECUTION_JUDGE in b.votes for b in log_), **_stored_vote_kinds(store)}


def log_version(log_: Sequence[BattleVotes]) -> str:
    """The rating version: a hash of the log's battles, competitors and effective votes, in order
    (:meth:`Log.version` computes the same in a stream)."""
    blob = json.dumps([[b.battle_id, b.attacker, b.defender, dict(b.votes)] + ([dict(b.weights)] if b.weights else [])
                       for b in log_], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def export_battles(store: RatingStore) -> list[dict]:
    """The vote log in the interchange format of `warriorflow rate --battles`."""
    return [log_record(b) for b in vote_log(store)]


def battle_log_line(b: BattleVotes) -> str:
    """One interchange JSONL line (no newline) for a battle; :func:`parse_battle_log` reads it back."""
    return encode_line(log_record(b), ascii_only=False).decode("utf-8").removesuffix("\n")


def parse_battle_log(lines: Iterable[str] | bytes | str) -> list[BattleVotes]:
    """Parse the interchange JSONL, one battle per line, in processing order; blank lines are skipped.
    ``ValueError`` names the (1-based) line of anything malformed."""
    try:
        return battles_from_records(list(iter_jsonl(lines)))
    except JSONLError as e:
        what = f"bad JSON ({e.detail})" if e.kind == "json" else f"expected a JSON object, got {e.detail}"
        raise ValueError(f"battle log line {e.line}: {what}") from None
