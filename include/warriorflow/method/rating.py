"""The arena's scoring (WarriorCoder step 5) as pure functions over the vote log.

Input is a battle log in processing order: one ``BattleVotes`` per battle, carrying each judge's
*effective* verdict (``votes.effective_vote``) on competitors: ``attacker`` | ``defender`` | ``tie`` |
``invalid``. Nothing here reads a store, a clock or global random state; the same log (and seed) gives
the same numbers.

Definitions (DESIGN.md section 1, step 5)
-----------------------------------------
* Local score: ``x_A = t_A / (t_A + t_B)`` over the *decisive* votes (``tie`` and ``invalid`` votes
  are not counted); ``(0.5, 0.5)`` when no vote is decisive (``local_scores``). A battle may give a
  judge a weight (``BattleVotes.weights``, default 1 each): ``t`` is then the weighted count, e.g. the
  deterministic ``execution`` vote with its configured weight, or judges weighed by calibrated accuracy.
* Battle result: ``s_A`` = 1 if ``t_A > t_B``, 0 if ``t_A < t_B``, else 0.5 (``battle_result``). A battle
  whose votes are all invalid (or that has none) is therefore a tie wherever results are used (Elo,
  Bradley-Terry, win rates, FastChat rows). Invalid votes are still counted and reported by ``rate``.
* Elo: a sequential fold in log order from ``initial``, expected score
  ``X_A = 1 / (1 + 10^((R_B - R_A)/400))``, ``R_A += K (s_A - X_A)``, ``R_B += K ((1 - s_A) - (1 - X_A))``.
* Final score of a response: ``e = alpha * X_elo + (1 - alpha) * x_local`` per battle, with ``X_elo``
  from the given (current) ratings, averaged over the battles the response fought on that instruction
  (one battle per opponent met). Gold: highest ``e``; ties (within ``GOLD_TIE_EPS``) go to the shorter
  response, then to the first expert name.

Bradley-Terry
-------------
``bt_mle`` fits P(i beats j) = 1 / (1 + 10^((R_j - R_i)/400)) by maximum likelihood on battle results,
where a tie (s = 0.5) counts as half a win each way, exactly like FastChat's ``compute_mle_elo`` which
duplicates the tie rows. Ratings are on the Elo scale (SCALE=400, BASE=10) and anchored so that the
**mean rating over the experts in the log equals** ``initial`` (FastChat instead pins one reference
model, mixtral-8x7b-instruct-v0.1, to 1114; ``anchor=(expert, rating)`` does that here).

The MLE does not exist (ratings diverge) when the win graph is not strongly connected, e.g. an expert
that won every battle, which is likely in a small first run. So ``prior`` (default ``PRIOR_TIES`` =
0.01) adds that many *virtual tie battles* between every pair of experts in the log: the likelihood is
then strictly concave, every expert gets a finite rating, and with real data volumes the effect is
negligible (~1e-3 Elo points with thousands of battles per pair). ``prior=0`` gives the plain MLE and
raises ``ValueError`` when it does not exist.

The fit works on counts: the log is reduced to a (attacker, defender, result) cell table
(``battle_table``), at most 3 m^2 cells for m experts. A bootstrap resample of the n battles with
replacement is exactly a multinomial draw of n over those cells (``bootstrap_counts``), so each round
is a fit on an m x m win-count matrix, not on n rows. All rounds are fitted together by Newton's
method with a backtracking line search (``fit_bt_counts``, batched ``numpy.linalg.solve``), to a step
below 1e-10 natural units (~4e-8 Elo points).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

from warriorflow.method.votes import ATTACKER, DEFENDER, INVALID, TIE, VERDICTS

SCALE = 400.0
BASE = 10.0
PRIOR_TIES = 0.01
GOLD_TIE_EPS = 1e-12
CI_PERCENTILES = (2.5, 97.5)
FASTCHAT_WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
FASTCHAT_JUDGE = "fastchat"  # the judge name from_fastchat gives a row that carries no votes

_NEWTON_TOL = 1e-10
_NEWTON_MAX_ITER = 200
LOG_KEYS = ("battle_id", "instruction_id", "attacker", "defender", "votes")


@dataclass(frozen=True)
class BattleVotes:
    """One battle and the effective verdict of each judge (judge -> attacker|defender|tie|invalid)."""

    battle_id: str
    instruction_id: str
    attacker: str
    defender: str
    votes: Mapping[str, str] = field(hash=False)
    weights: Mapping[str, float] | None = field(default=None, hash=False, compare=True)

    def weight(self, judge: str) -> float:
        return 1.0 if self.weights is None else float(self.weights.get(judge, 1.0))

    def __post_init__(self) -> None:
        for name in ("battle_id", "instruction_id", "attacker", "defender"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, not {getattr(self, name)!r}")
        if self.attacker == self.defender:
            raise ValueError(f"battle {self.battle_id!r}: attacker and defender are both {self.attacker!r}")
        if not isinstance(self.votes, Mapping):
            raise ValueError(f"battle {self.battle_id!r}: votes must be a mapping judge -> verdict")
        for judge, verdict in self.votes.items():
            if not isinstance(judge, str):
                raise ValueError(f"battle {self.battle_id!r}: judge name must be a string, not {judge!r}")
            if verdict not in VERDICTS:
                raise ValueError(f"battle {self.battle_id!r}: unknown verdict {verdict!r} from judge {judge!r} "
                                 f"(expected one of {', '.join(VERDICTS)})")
        if self.weights is not None:
            if not isinstance(self.weights, Mapping):
                raise ValueError(f"battle {self.battle_id!r}: weights must be a mapping judge -> weight")
            for judge, w in self.weights.items():
                if judge not in self.votes:
                    raise ValueError(f"battle {self.battle_id!r}: a weight for {judge!r}, who did not vote")
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                    raise ValueError(f"battle {self.battle_id!r}: weight of {judge!r} must be a number >= 0, "
                                     f"not {w!r}")


# --------------------------------------------------------------------------------------------------
# Interchange: the battle log as JSONL
# --------------------------------------------------------------------------------------------------

def battles_from_records(records: Iterable[tuple[int, Mapping]]) -> list[BattleVotes]:
    """The battles of the interchange log, from its (line number, record) pairs in processing order.

    Each record is ``{"battle_id", "instruction_id", "attacker", "defender", "votes": {judge: verdict}}``.
    Raises ``ValueError`` naming the (1-based) line on a missing key, a wrong type, an unknown verdict,
    attacker == defender or a repeated battle_id.
    """
    battles: list[BattleVotes] = []
    seen: dict[str, int] = {}
    for lineno, obj in records:
        missing = [k for k in LOG_KEYS if k not in obj]
        if missing:
            raise ValueError(f"battle log line {lineno}: missing key(s) {', '.join(missing)}")
        if not isinstance(obj["votes"], dict):
            raise ValueError(f"battle log line {lineno}: votes must be an object judge -> verdict")
        weights = obj.get("weights")
        if weights is not None and not isinstance(weights, dict):
            raise ValueError(f"battle log line {lineno}: weights must be an object judge -> number")
        try:
            b = BattleVotes(obj["battle_id"], obj["instruction_id"], obj["attacker"], obj["defender"],
                            dict(obj["votes"]), dict(weights) if weights else None)
        except ValueError as e:
            raise ValueError(f"battle log line {lineno}: {e}") from None
        if b.battle_id in seen:
            raise ValueError(f"battle log line {lineno}: battle_id {b.battle_id!r} repeats line {seen[b.battle_id]}")
        seen[b.battle_id] = lineno
        battles.append(b)
    return battles


def log_record(b: BattleVotes) -> dict:
    """A battle as an interchange-log record."""
    record = {"battle_id": b.battle_id, "instruction_id": b.instruction_id, "attacker": b.attacker,
              "defender": b.defender, "votes": dict(b.votes)}
    if b.weights:
        record["weights"] = dict(b.weights)
    return record


# --------------------------------------------------------------------------------------------------
# Per-battle scores
# --------------------------------------------------------------------------------------------------

def vote_tallies(votes: Mapping[str, str], weights: Mapping[str, float] | None = None) -> tuple[float, float]:
    """(t_attacker, t_defender): the weighted counts of the votes for each side (a judge's weight defaults to 1),
    added in the order ``votes`` holds them: the numbers ``local_scores`` and ``battle_result`` decide by."""
    t_a = t_b = 0.0
    for judge, v in votes.items():
        if v == ATTACKER:
            t_a += 1.0 if weights is None else float(weights.get(judge, 1.0))
        elif v == DEFENDER:
            t_b += 1.0 if weights is None else float(weights.get(judge, 1.0))
    return t_a, t_b


def result_of(t_a: float, t_b: float) -> float:
    """The attacker's result from the tallies: 1 if more votes for the attacker, 0 if more for the defender,
    else 0.5."""
    return 1.0 if t_a > t_b else 0.0 if t_a < t_b else 0.5


def _tally(b: BattleVotes) -> tuple[float, float]:
    return vote_tallies(b.votes, b.weights)


def tallies(b: BattleVotes) -> tuple[float, float]:
    """:func:`vote_tallies` of a battle."""
    return _tally(b)


def local_scores(b: BattleVotes) -> tuple[float, float]:
    """(x_attacker, x_defender): each side's share of the decisive votes; (0.5, 0.5) when there are none."""
    t_a, t_b = _tally(b)
    if t_a + t_b == 0:
        return 0.5, 0.5
    x_a = t_a / (t_a + t_b)
    return x_a, 1.0 - x_a


def battle_result(b: BattleVotes) -> float:
    """s_attacker: 1 if more votes for the attacker, 0 if more for the defender, else 0.5."""
    return result_of(*_tally(b))


def invalid_votes(battles: Iterable[BattleVotes]) -> int:
    """The number of invalid votes in the log."""
    return sum(1 for b in battles for v in b.votes.values() if v == INVALID)


# --------------------------------------------------------------------------------------------------
# Elo
# --------------------------------------------------------------------------------------------------

def expected(r_a: float, r_b: float) -> float:
    """Elo expected score of a player rated r_a against one rated r_b."""
    return 1.0 / (1.0 + BASE ** ((r_b - r_a) / SCALE))


def _elo_steps(battles: Iterable[BattleVotes], k: float, initial: float, ratings: dict[str, float]):
    """Fold the battles into ``ratings`` (mutated), yielding after each battle."""
    for b in battles:
        r_a = ratings.setdefault(b.attacker, initial)
        r_b = ratings.setdefault(b.defender, initial)
        delta = k * (battle_result(b) - expected(r_a, r_b))
        ratings[b.attacker] = r_a + delta
        ratings[b.defender] = r_b - delta  # K((1 - s_A) - (1 - X_A)) = -K(s_A - X_A)
        yield


def elo_fold(battles: Iterable[BattleVotes], k: float = 40.0, initial: float = 1000.0) -> dict[str, float]:
    """Sequential Elo over the battles in the given order; every expert starts at ``initial``."""
    ratings: dict[str, float] = {}
    for _ in _elo_steps(battles, k, initial, ratings):
        pass
    return ratings


def elo_fold_arrays(chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], experts: Sequence[str],
                    k: float = 40.0, initial: float = 1000.0) -> dict[str, float]:
    """:func:`elo_fold` over battles given as chunks of arrays in log order: attacker and defender indices into
    ``experts`` and the attacker's result (``battle_result``). The same numbers, computed the same way; the
    ratings of the experts that fought, in the order they first appear."""
    ratings = [float(initial)] * len(experts)
    seen: dict[int, None] = {}
    for a_, d_, s_ in chunks:
        a_arr, d_arr = np.asarray(a_, dtype=np.int64), np.asarray(d_, dtype=np.int64)
        both = np.empty(2 * len(a_arr), dtype=np.int64)
        both[0::2], both[1::2] = a_arr, d_arr
        names, first = np.unique(both, return_index=True)
        for i in names[np.argsort(first)].tolist():
            seen.setdefault(i, None)
        for a, d, s in zip(a_arr.tolist(), d_arr.tolist(), np.asarray(s_, dtype=np.float64).tolist()):
            r_a, r_b = ratings[a], ratings[d]
            delta = k * (s - 1.0 / (1.0 + BASE ** ((r_b - r_a) / SCALE)))  # expected(r_a, r_b)
            ratings[a] = r_a + delta
            ratings[d] = r_b - delta
    return {experts[i]: ratings[i] for i in seen}


def elo_history(battles: Iterable[BattleVotes], k: float = 40.0, initial: float = 1000.0) -> list[dict[str, float]]:
    """The ratings after each battle (one dict per battle, experts seen so far), for Elo-over-time plots."""
    ratings: dict[str, float] = {}
    return [dict(ratings) for _ in _elo_steps(battles, k, initial, ratings)]


# --------------------------------------------------------------------------------------------------
# Final scores and gold selection
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResponseScore:
    """A response's final score and its two parts, each the mean over its battles on the instruction:
    ``final = alpha * elo_expectation + (1 - alpha) * local`` (up to rounding)."""

    final: float
    elo_expectation: float
    local: float
    battles: int


def response_scores(battles: Iterable[BattleVotes], elo: Mapping[str, float],
                    alpha: float = 0.7) -> dict[str, dict[str, ResponseScore]]:
    """instruction_id -> expert -> :class:`ResponseScore`: ``final`` is the mean over its battles on that
    instruction of ``alpha * expected(R_self, R_opponent) + (1 - alpha) * x_local``, with ``elo`` the current
    ratings; ``elo_expectation`` and ``local`` are the means of the two parts."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    sums: dict[str, dict[str, list[float]]] = {}
    for b in battles:
        for name in (b.attacker, b.defender):
            if name not in elo:
                raise ValueError(f"battle {b.battle_id!r}: no Elo rating for expert {name!r}")
        x_elo = expected(elo[b.attacker], elo[b.defender])
        x_a, x_b = local_scores(b)
        per = sums.setdefault(b.instruction_id, {})
        for name, x_exp, x_loc in ((b.attacker, x_elo, x_a), (b.defender, 1.0 - x_elo, x_b)):
            acc = per.setdefault(name, [0.0, 0, 0.0, 0.0])
            acc[0] += alpha * x_exp + (1 - alpha) * x_loc
            acc[1] += 1
            acc[2] += x_exp
            acc[3] += x_loc
    return {i: {name: ResponseScore(s / n, x / n, loc / n, n) for name, (s, n, x, loc) in per.items()}
            for i, per in sums.items()}


@dataclass(frozen=True)
class ScoreSums:
    """:func:`response_scores` as arrays indexed by response slot: each response's ``final`` score,
    ``elo_expectation`` and ``local`` score (means over its battles) and its number of ``battles``."""

    final: np.ndarray
    elo_expectation: np.ndarray
    local: np.ndarray
    battles: np.ndarray


def score_sums(chunks: Iterable[tuple[np.ndarray, ...]], elo: Sequence[float], n_slots: int,
               alpha: float = 0.7) -> ScoreSums:
    """:func:`response_scores` over battles given as chunks of arrays in log order: attacker and defender
    indices into ``elo`` (the current ratings), the weighted tallies ``t_a``, ``t_b`` (``_tally``) and the
    attacker's and defender's response slots (below ``n_slots``). The same numbers, computed the same way:
    every term is the same IEEE operation, and each slot's sums are accumulated in log order
    (``np.add.at`` is unbuffered and sequential)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    m = len(elo)
    pair = np.full((m, m), np.nan)
    for i in range(m):
        for j in range(m):
            if i != j:
                pair[i, j] = expected(elo[i], elo[j])  # the very function response_scores calls
    sums = np.zeros(n_slots)
    exps = np.zeros(n_slots)
    locs = np.zeros(n_slots)
    count = np.zeros(n_slots, dtype=np.int64)
    beta = 1 - alpha
    for a, d, t_a, t_b, slot_a, slot_d in chunks:
        a, d = np.asarray(a, dtype=np.int64), np.asarray(d, dtype=np.int64)
        t_a, t_b = np.asarray(t_a, dtype=np.float64), np.asarray(t_b, dtype=np.float64)
        total = t_a + t_b
        x_a = np.full(len(a), 0.5)
        np.divide(t_a, total, out=x_a, where=total != 0)
        x_b = np.where(total != 0, 1.0 - x_a, 0.5)
        x_elo = pair[a, d]
        n = len(a)
        keys = np.empty(2 * n, dtype=np.int64)
        keys[0::2], keys[1::2] = slot_a, slot_d
        x_exp = np.empty(2 * n)
        x_exp[0::2], x_exp[1::2] = x_elo, 1.0 - x_elo
        x_loc = np.empty(2 * n)
        x_loc[0::2], x_loc[1::2] = x_a, x_b
        np.add.at(sums, keys, alpha * x_exp + beta * x_loc)
        np.add.at(exps, keys, x_exp)
        np.add.at(locs, keys, x_loc)
        np.add.at(count, keys, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ScoreSums(sums / count, exps / count, locs / count, count)


def final_scores(battles: Iterable[BattleVotes], elo: Mapping[str, float],
                 alpha: float = 0.7) -> dict[str, dict[str, float]]:
    """instruction_id -> expert -> the response's final score (``response_scores(...).final``)."""
    return {i: {name: s.final for name, s in per.items()} for i, per in response_scores(battles, elo, alpha).items()}


def select_gold(final: Mapping[str, Mapping[str, float]],
                lengths: Mapping[tuple[str, str], int] | None = None) -> dict[str, str]:
    """instruction_id -> the expert whose response has the highest final score.

    Scores within ``GOLD_TIE_EPS`` of the best tie; a tie goes to the shorter response (``lengths`` keyed
    by (instruction_id, expert); a response without a length ranks after those with one), then to the
    first expert name.
    """
    gold: dict[str, str] = {}
    for inst, scores in final.items():
        if not scores:
            continue
        best = max(scores.values())
        tied = [name for name, e in scores.items() if e >= best - GOLD_TIE_EPS]

        def key(name: str, inst: str = inst) -> tuple[float, str]:
            n = lengths.get((inst, name)) if lengths is not None else None
            return (math.inf if n is None else float(n), name)

        gold[inst] = min(tied, key=key)
    return gold


# --------------------------------------------------------------------------------------------------
# Bradley-Terry on a count table
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BattleTable:
    """The battle log reduced to counts of (attacker index, defender index, result) cells.

    ``experts`` are sorted by name; ``a``, ``b`` index into them, ``s`` is the attacker's result
    (0, 0.5 or 1) and ``count`` how many battles fell in the cell (all > 0).
    """

    experts: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    s: np.ndarray
    count: np.ndarray

    @property
    def n(self) -> int:
        return int(self.count.sum())

    @classmethod
    def from_arrays(cls, a: np.ndarray, b: np.ndarray, s: np.ndarray, experts: Sequence[str]) -> BattleTable:
        """From per-battle arrays: attacker and defender indices into ``experts``, results in {0, 0.5, 1}."""
        return cls.from_counts(a, b, s, None, experts)

    @classmethod
    def from_counts(cls, a: np.ndarray, b: np.ndarray, s: np.ndarray, count: np.ndarray | None,
                    experts: Sequence[str]) -> BattleTable:
        """From cells counted elsewhere (e.g. a GROUP BY in SQL): ``count[i]`` battles of attacker ``a[i]``
        against defender ``b[i]`` with result ``s[i]`` (cells may repeat; None: one battle each). The same
        table as :meth:`from_arrays` on the battles the counts stand for."""
        a, b, s = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), np.asarray(s, dtype=np.float64)
        m = len(experts)
        if not (a.shape == b.shape == s.shape and a.ndim == 1):
            raise ValueError("a, b and s must be 1-d arrays of the same length")
        if count is not None:
            count = np.asarray(count, dtype=np.int64)
            if count.shape != a.shape or (count.size and count.min() < 0):
                raise ValueError("count must be a 1-d array of counts >= 0, one per cell")
        if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= m):
            raise ValueError("expert index out of range")
        if np.any(a == b):
            raise ValueError("a battle has the same expert on both sides")
        code = s * 2.0
        if not np.all((code == 0) | (code == 1) | (code == 2)):
            raise ValueError("results must be 0, 0.5 or 1")
        # canonical expert order: sorted names
        order = sorted(range(m), key=lambda i: experts[i])
        remap = np.empty(m, dtype=np.int64)
        remap[order] = np.arange(m)
        cell = (remap[a] * m + remap[b]) * 3 + code.astype(np.int64)
        if count is None:
            cells = np.bincount(cell, minlength=3 * m * m)
        else:
            cells = np.zeros(3 * m * m, dtype=np.int64)
            np.add.at(cells, cell, count)
        nz = np.flatnonzero(cells)
        return cls(tuple(experts[i] for i in order), nz // 3 // m, nz // 3 % m, (nz % 3) / 2.0,
                   cells[nz].astype(np.int64))


def battle_table(battles: Iterable[BattleVotes]) -> BattleTable:
    """Reduce a battle log to its (attacker, defender, result) count table."""
    index: dict[str, int] = {}
    a: list[int] = []
    b: list[int] = []
    s: list[float] = []
    for bt in battles:
        a.append(index.setdefault(bt.attacker, len(index)))
        b.append(index.setdefault(bt.defender, len(index)))
        s.append(battle_result(bt))
    return BattleTable.from_arrays(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64),
                                   np.array(s, dtype=np.float64), list(index))


def _as_table(battles: Iterable[BattleVotes] | BattleTable) -> BattleTable:
    return battles if isinstance(battles, BattleTable) else battle_table(battles)


def _cell_to_wins(table: BattleTable) -> np.ndarray:
    """(cells, m*m) matrix: a cell's count times this gives its contribution to the win matrix W."""
    m = len(table.experts)
    mat = np.zeros((len(table.count), m * m))
    rows = np.arange(len(table.count))
    np.add.at(mat, (rows, table.a * m + table.b), table.s)
    np.add.at(mat, (rows, table.b * m + table.a), 1.0 - table.s)
    return mat


def win_counts(table: BattleTable, counts: np.ndarray | None = None) -> np.ndarray:
    """W[..., i, j]: wins of i over j (ties count half each way), from the table's counts or from
    ``counts`` (rounds, cells) of resampled cell counts."""
    m = len(table.experts)
    c = table.count[None, :] if counts is None else np.atleast_2d(counts)
    w = c.astype(np.float64) @ _cell_to_wins(table)
    w = w.reshape(-1, m, m)
    return w[0] if counts is None else w


def _loglik(w: np.ndarray, theta: np.ndarray) -> np.ndarray:
    d = theta[:, :, None] - theta[:, None, :]
    return np.einsum("rij,rij->r", w, log_expit(d))


def _newton(w: np.ndarray, theta0: np.ndarray | None = None) -> np.ndarray:
    """Maximise sum_ij W_ij log sigmoid(theta_i - theta_j) for each round of ``w`` (rounds, m, m).

    Newton steps on the mean-zero subspace with backtracking; returns mean-zero thetas (rounds, m) in
    natural (log-odds) units. Raises ValueError when a round does not converge.
    """
    r, m, _ = w.shape
    n = w + w.transpose(0, 2, 1)
    wins = w.sum(axis=2)
    theta = np.zeros((r, m)) if theta0 is None else np.array(np.broadcast_to(theta0, (r, m)), dtype=np.float64)
    theta -= theta.mean(axis=1, keepdims=True)
    ll = _loglik(w, theta)
    gauge = np.full((m, m), 1.0 / m)
    diag = np.arange(m)
    done = np.zeros(r, dtype=bool)
    for _ in range(_NEWTON_MAX_ITER):
        p = expit(theta[:, :, None] - theta[:, None, :])
        grad = wins - np.einsum("rij,rij->ri", n, p)
        fisher = n * p * (1.0 - p)
        hess = -fisher
        hess[:, diag, diag] += fisher.sum(axis=2)
        try:
            step = np.linalg.solve(hess + gauge, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            raise ValueError("Bradley-Terry fit: the comparison graph is disconnected; use prior > 0") from None
        done |= np.abs(step).max(axis=1) <= _NEWTON_TOL
        if done.all():
            return theta - theta.mean(axis=1, keepdims=True)
        step[done] = 0.0
        t = np.ones(r)
        for _ in range(60):
            cand = theta + t[:, None] * step
            ll_c = _loglik(w, cand)
            ok = ll_c >= ll - 1e-12 * np.abs(ll)
            if ok.all():
                break
            t = np.where(ok, t, t / 2)
        theta = np.where(ok[:, None], cand, theta)
        ll = np.where(ok, ll_c, ll)
    raise ValueError("Bradley-Terry fit did not converge (the MLE may not exist); use prior > 0")


def _check_mle_exists(w: np.ndarray) -> None:
    m = w.shape[0]
    if m < 2:
        return
    ncomp, _ = connected_components(csr_matrix(w > 0), directed=True, connection="strong")
    if ncomp > 1:
        raise ValueError("the Bradley-Terry MLE does not exist: the win graph is not strongly connected "
                         "(some group of experts never lost, or never won, against the rest); use prior > 0")


def _add_prior(w: np.ndarray, prior: float) -> np.ndarray:
    if prior < 0:
        raise ValueError(f"prior must be >= 0, not {prior}")
    if prior == 0:
        return w
    m = w.shape[-1]
    return w + (prior / 2.0) * (1.0 - np.eye(m))


def _to_elo(theta: np.ndarray, experts: Sequence[str], initial: float, scale: float, base: float,
            anchor: tuple[str, float] | None) -> np.ndarray:
    ratings = theta * (scale / math.log(base))
    if anchor is None:
        return ratings - ratings.mean(axis=-1, keepdims=True) + initial
    name, value = anchor
    if name not in experts:
        raise ValueError(f"anchor expert {name!r} is not in the battle log")
    i = list(experts).index(name)
    return ratings - ratings[..., [i]] + value


def fit_bt_counts(table: BattleTable, counts: np.ndarray | None = None, *, prior: float = PRIOR_TIES,
                  initial: float = 1000.0, scale: float = SCALE, base: float = BASE,
                  anchor: tuple[str, float] | None = None) -> np.ndarray:
    """Bradley-Terry ratings on the Elo scale from the table (shape (m,)) or, per round, from resampled
    cell counts (rounds, cells) -> (rounds, m). Columns follow ``table.experts``."""
    m = len(table.experts)
    if m == 0:
        return np.zeros((0,)) if counts is None else np.zeros((len(counts), 0))
    full = _add_prior(win_counts(table), prior)
    if prior == 0:
        _check_mle_exists(full)
    theta_full = _newton(full[None])[0]
    if counts is None:
        return _to_elo(theta_full, table.experts, initial, scale, base, anchor)
    w = _add_prior(win_counts(table, counts), prior)
    theta = _newton(w, theta_full)  # warm start from the full-data fit
    return _to_elo(theta, table.experts, initial, scale, base, anchor)


def bootstrap_counts(table: BattleTable, rounds: int, seed: int = 0) -> np.ndarray:
    """(rounds, cells) cell counts of ``rounds`` bootstrap resamples of the n battles with replacement,
    i.e. multinomial draws of n over the cells with probabilities count / n (numpy ``default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    if table.n == 0:
        return np.zeros((rounds, 0), dtype=np.int64)
    return rng.multinomial(table.n, table.count / table.n, size=rounds)


def bt_mle(battles: Iterable[BattleVotes] | BattleTable, *, initial: float = 1000.0, prior: float = PRIOR_TIES,
           scale: float = SCALE, base: float = BASE, anchor: tuple[str, float] | None = None) -> dict[str, float]:
    """Bradley-Terry maximum-likelihood ratings on the Elo scale, mean rating = ``initial`` (or ``anchor``)."""
    table = _as_table(battles)
    ratings = fit_bt_counts(table, prior=prior, initial=initial, scale=scale, base=base, anchor=anchor)
    return {name: float(r) for name, r in zip(table.experts, ratings)}


def bt_bootstrap(battles: Iterable[BattleVotes] | BattleTable, rounds: int = 100, seed: int = 0, *,
                 initial: float = 1000.0, prior: float = PRIOR_TIES, scale: float = SCALE, base: float = BASE,
                 anchor: tuple[str, float] | None = None) -> dict[str, dict[str, float | None]]:
    """expert -> {"rating": the full-data MLE, "lo", "hi": the 2.5 / 97.5 percentiles over ``rounds``
    bootstrap resamples}; lo and hi are None when ``rounds`` is 0. Deterministic for a seed."""
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, not {rounds}")
    table = _as_table(battles)
    kw = dict(prior=prior, initial=initial, scale=scale, base=base, anchor=anchor)
    point = fit_bt_counts(table, **kw)
    if rounds == 0:
        return {name: {"rating": float(r), "lo": None, "hi": None} for name, r in zip(table.experts, point)}
    samples = fit_bt_counts(table, bootstrap_counts(table, rounds, seed), **kw)
    lo, hi = np.percentile(samples, CI_PERCENTILES, axis=0)
    return {name: {"rating": float(point[i]), "lo": float(lo[i]), "hi": float(hi[i])}
            for i, name in enumerate(table.experts)}


# --------------------------------------------------------------------------------------------------
# Win rates
# --------------------------------------------------------------------------------------------------

def _pair_tables(battles: Iterable[BattleVotes]) -> tuple[list[str], np.ndarray, np.ndarray]:
    battles = list(battles)
    if not battles:  # no battles yet: no experts, empty tables
        return [], np.zeros((0, 0)), np.zeros((0, 0))
    table = battle_table(battles)
    w = win_counts(table)
    return list(table.experts), w, w + w.T


def win_rate_matrix(battles: Iterable[BattleVotes]) -> tuple[list[str], list[list[float | None]]]:
    """(experts sorted by name, matrix): matrix[i][j] is the share of the battles between i and j (in
    either role) that i won by battle result, a tie counting half; None where they never met (and on the
    diagonal)."""
    experts, w, n = _pair_tables(battles)
    m = len(experts)
    return experts, [[float(w[i, j] / n[i, j]) if n[i, j] > 0 else None for j in range(m)] for i in range(m)]


def battle_counts(battles: Iterable[BattleVotes]) -> tuple[list[str], list[list[int]]]:
    """(experts sorted by name, matrix): how many battles each pair fought, in either role (symmetric)."""
    experts, _, n = _pair_tables(battles)
    return experts, [[round(float(x)) for x in row] for row in n]


# --------------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------------

def rate(battles: Sequence[BattleVotes], k: float = 40.0, alpha: float = 0.7, initial: float = 1000.0,
         bootstrap_rounds: int = 100, seed: int = 0) -> dict:
    """The interchange output, JSON-serialisable:

    ``{"elo": {expert: r}, "bt": {expert: {"rating", "lo", "hi"}}, "final": {instruction_id: {expert: e}},
    "gold": {instruction_id: expert}, "invalid_votes": n}``. Gold ties go to the first expert name (no
    lengths here; call ``select_gold`` with lengths for the shorter-response rule).
    """
    battles = list(battles)
    elo = elo_fold(battles, k=k, initial=initial)
    final = final_scores(battles, elo, alpha=alpha)
    return {
        "elo": elo,
        "bt": bt_bootstrap(battles, rounds=bootstrap_rounds, seed=seed, initial=initial),
        "final": final,
        "gold": select_gold(final),
        "invalid_votes": invalid_votes(battles),
    }


# --------------------------------------------------------------------------------------------------
# FastChat (Chatbot Arena) battle rows
# --------------------------------------------------------------------------------------------------

def to_fastchat(battles: Iterable[BattleVotes]) -> list[dict]:
    """Chatbot Arena battle rows: model_a = attacker, model_b = defender, winner from ``battle_result``
    (1 -> "model_a", 0 -> "model_b", 0.5 -> "tie", also when every vote is invalid: "tie (bothbad)" is a
    human's judgement that both answers are bad, which an unparseable judge output is not). The rows
    also carry ``votes`` (FastChat ignores extra columns) so that ``from_fastchat`` round-trips exactly.
    """
    names = {1.0: "model_a", 0.0: "model_b", 0.5: "tie"}
    return [{"model_a": b.attacker, "model_b": b.defender, "winner": names[battle_result(b)],
             "question_id": b.instruction_id, "battle_id": b.battle_id, "votes": dict(b.votes)} for b in battles]


def from_fastchat(rows: Iterable[Mapping]) -> list[BattleVotes]:
    """Battles from Chatbot Arena rows. A row with ``votes`` keeps them (and its winner must agree with
    them); a row without gets one vote from judge ``FASTCHAT_JUDGE``: attacker / defender / tie ("tie" and
    "tie (bothbad)"). ``battle_id`` defaults to ``fastchat-<row index>``, ``question_id`` to the battle id."""
    verdict = {"model_a": ATTACKER, "model_b": DEFENDER, "tie": TIE, "tie (bothbad)": TIE}
    result = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
    out = []
    for i, row in enumerate(rows):
        for key in ("model_a", "model_b", "winner"):
            if key not in row:
                raise ValueError(f"fastchat row {i}: missing key {key}")
        winner = row["winner"]
        if winner not in verdict:
            raise ValueError(f"fastchat row {i}: unknown winner {winner!r} (expected one of "
                             f"{', '.join(FASTCHAT_WINNERS)})")
        battle_id = str(row.get("battle_id", f"fastchat-{i}"))
        votes = dict(row["votes"]) if row.get("votes") is not None else {FASTCHAT_JUDGE: verdict[winner]}
        try:
            b = BattleVotes(battle_id, str(row.get("question_id", battle_id)), row["model_a"], row["model_b"], votes)
        except ValueError as e:
            raise ValueError(f"fastchat row {i}: {e}") from None
        if battle_result(b) != result[winner]:
            raise ValueError(f"fastchat row {i}: winner {winner!r} disagrees with its votes")
        out.append(b)
    return out
