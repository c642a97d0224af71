"""Style-controlled Bradley-Terry ratings: the arena's ratings with the answers' length and markdown
held fixed, as arena-hard-auto's (and Chatbot Arena's) "style control" does. Pure functions, no I/O.

A judge that likes long or heavily formatted answers rewards the expert that writes them, whatever the
answers' substance. Style control fits one logistic regression in which each battle's outcome depends on
the two experts' strengths *and* on how the two answers differ in style; the experts' coefficients are
their ratings with that style preference taken out, and the style coefficients say how much the judges
rewarded style.

Style features of one response (``style_features``)
---------------------------------------------------
* ``length``: the number of word-like tokens of the whole text: maximal runs of word characters
  (``\\w+``, Unicode-aware, so "déjà" or "变量名" is one run) plus every other non-space character on its own
  (``x += 1`` is 4 tokens). arena-hard-auto counts tiktoken tokens; this tokenizer-free count is close to
  proportional for English and code, and the feature below is a ratio, which cancels a constant factor.
  A script written without spaces (Chinese, Japanese) counts one token per run, which undercounts.
* ``headers``: ATX header lines, ``#`` to ``######`` at the start of a line followed by a space, a tab or
  the end of the line (arena-hard-auto's ``^#{1,6}\\s``).
* ``lists``: list items, lines that start (after any indentation) with ``1.``-style numbers or ``-``, ``*``,
  ``+`` followed by a space, a tab or the end of the line (arena-hard-auto's ``^\\s*\\d+\\.\\s`` and
  ``^\\s*[-*+]\\s``; like theirs it also counts a ``* * *`` rule).
* ``bold``: ``**text**`` plus ``__text__`` spans, counted separately, text without ``*`` (resp. ``_``) or a
  line break (arena-hard-auto's two patterns).

Markdown is counted outside code only. Fenced code blocks are removed first (arena-hard-auto does too),
but by lines, as CommonMark reads them: a fence opens with 3+ backticks or tildes indented at most 3
spaces (a backtick fence's info string has no backtick), closes with a line of the same character at
least as long and nothing else, and an unclosed fence runs to the end of the text. So a ``# comment`` in a
fenced Python or shell block is not a header, even when the block itself contains a backtick (arena-hard-
auto's pattern, three backticks around ``[^`]*``, misses such a block). Inline code spans (`` `__init__` ``) are removed
from the remaining lines as well, so identifiers in them are not bold (arena-hard-auto keeps them). The
length counts the whole text, code included, as arena-hard-auto's token count does.

Features of a battle (``style_differences``, ``standardize``)
-------------------------------------------------------------
For each feature, with ``a`` the attacker's count and ``b`` the defender's: ``(a - b) / (a + b + 1)``,
in (-1, 1), 0 when the counts are equal. The ``+ 1`` is arena-hard-auto's and FastChat's
``construct_style_matrices(add_one=True)``; it also makes two answers without any header a 0 rather than
0/0. Each feature is then standardized over the battles of the fit, ``(d - mean) / std`` with the
population std (numpy's default, as theirs). A feature with the same value in every battle (std below
1e-12; e.g. no answer has any header) cannot be told apart from the experts' strengths: it is left out of
the fit and its coefficient is None.

The fit (``fit_style_bt``)
--------------------------
P(attacker wins) = sigmoid(theta_attacker - theta_defender + x . beta), x the battle's standardized
style features: a logistic regression on the columns +1 (attacker), -1 (defender) per expert plus the
style columns, without intercept. A battle's result ``s`` (``rating.battle_result``: 1, 0.5 or 0) is its
target, so a tie counts as half a win each way, exactly as in ``rating.bt_mle`` (and as FastChat, which
duplicates every battle). Maximised by Newton's method with a backtracking line search, to a step below
1e-10 natural units.

Priors, so that the fit exists on any log, e.g. a first run where one expert won everything or where the
longer answer always won:

* ``prior`` (default ``rating.PRIOR_TIES`` = 0.01) virtual tie battles between every pair of experts,
  with no style difference (x = 0), as ``rating.bt_mle`` adds them;
* ``style_prior`` (default ``STYLE_PRIOR`` = 0.01): an L2 penalty ``style_prior / 2 * |beta|^2``, a Gaussian
  prior with sd 10 log-odds per std on each style coefficient. A battle adds up to 0.25 x^2 of curvature
  (x^2 is 1 on average after standardizing), so this weighs about as much as 0.04 battles: negligible once
  there are dozens. (arena-hard-auto's ``fit_bt`` uses scikit-learn's default L2 with C = 1, a far stronger
  prior that also shrinks the experts.)

With both priors the objective is strictly concave and its maximum finite; with ``prior=0`` and
``style_prior=0`` it is the plain MLE, and a ``ValueError`` says so when that does not exist. With no style
difference at all (every feature constant) the ratings are exactly ``rating.bt_mle``'s.

Ratings and coefficients
------------------------
Ratings are the expert coefficients on the Elo scale, ``theta * SCALE / ln(BASE)`` (SCALE 400, BASE 10),
anchored so that their mean over the experts of the fit is ``initial``, like ``rating.bt_mle``. A style
coefficient is reported in natural log-odds per std of its feature (``log_odds``, what arena-hard-auto
prints) and on the same Elo scale (``elo``): a ``length`` coefficient of +0.2 log-odds, ~35 Elo points,
means the judges gave an answer one std longer (relative to its opponent) the odds of an expert rated 35
points higher.

Bootstrap (``bt_style``, ``rounds`` > 0): the battles are resampled with replacement ``rounds`` times, each
round n battle indices drawn uniformly from numpy ``default_rng(seed)`` and counted (a multinomial draw of n
over the n battles, in O(n); the seed and rounds conventions of ``rating.bt_bootstrap``); every round is
refitted (warm-started) with the standardization of the full data (as arena-hard-auto does), and ``lo`` /
``hi`` are the 2.5 / 97.5 percentiles of the ratings and of the Elo-scale coefficients.
"""

from __future__ import annotations

import math
import os
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.special import expit, log_expit

from warriorflow.method.rating import BASE, CI_PERCENTILES, PRIOR_TIES, SCALE, BattleVotes, battle_result

FEATURES = ("length", "headers", "lists", "bold")
FEATURES_VERSION = 1
"""Version of :func:`style_features`: stored counts (the ``response_style`` table) of another version are
computed again. Bump it with any change to what the features count."""
STYLE_PRIOR = 0.01
CONSTANT_STD = 1e-12

_NEWTON_TOL = 1e-10
_NEWTON_MAX_ITER = 200


# --------------------------------------------------------------------------------------------------
# Features of one response
# --------------------------------------------------------------------------------------------------

class StyleFeatures(NamedTuple):
    """The style counts of one response (see the module docstring for what each counts)."""

    length: int
    headers: int
    lists: int
    bold: int


_TOKEN = re.compile(r"\w+|[^\w\s]")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADER = re.compile(r"#{1,6}(?:[ \t]|$)")
_LIST = re.compile(r"[ \t]*(?:\d+\.|[-*+])(?:[ \t]|$)")
_BOLD_STARS = re.compile(r"\*\*[^*\n]+\*\*")
_BOLD_UNDERSCORES = re.compile(r"__[^_\n]+__")
_BACKTICKS = re.compile(r"`+")


def _prose_lines(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (fence lines included in the block)."""
    out: list[str] = []
    fence: str | None = None  # the opening fence's run while inside a block
    for line in text.splitlines():
        if fence is None:
            m = _FENCE_OPEN.match(line)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = m.group(1)
                continue
            out.append(line)
        else:
            stripped = line.strip(" \t")
            if (len(line) - len(line.lstrip(" ")) <= 3 and stripped and set(stripped) == {fence[0]}
                    and len(stripped) >= len(fence)):
                fence = None
    return out


def _without_code_spans(line: str) -> str:
    """``line`` with its inline code spans removed: a backtick run opens a span that the next run of the
    same length closes; a run without a partner is literal text (CommonMark). Linear in the line."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(line)]
    if len(runs) < 2:
        return line
    nxt = [-1] * len(runs)  # index of the next run of the same length
    last: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        n = runs[i][1] - runs[i][0]
        nxt[i] = last.get(n, -1)
        last[n] = i
    parts: list[str] = []
    pos, i = 0, 0
    while i < len(runs):
        j = nxt[i]
        if j < 0:
            i += 1
            continue
        parts.append(line[pos:runs[i][0]])
        pos = runs[j][1]
        i = j + 1
        while i < len(runs) and runs[i][0] < pos:  # runs inside the span are code
            i += 1
    parts.append(line[pos:])
    return " ".join(parts)


def style_features(text: str) -> StyleFeatures:
    """Token length and the header, list-item and bold counts of one response's text."""
    if not isinstance(text, str):
        raise ValueError(f"a response text must be a string, not {type(text).__name__}")
    headers = lists = bold = 0
    for line in _prose_lines(text):
        line = _without_code_spans(line)
        headers += bool(_HEADER.match(line))
        lists += bool(_LIST.match(line))
        bold += len(_BOLD_STARS.findall(line)) + len(_BOLD_UNDERSCORES.findall(line))
    return StyleFeatures(len(_TOKEN.findall(text)), headers, lists, bold)


# --------------------------------------------------------------------------------------------------
# Features of a battle
# --------------------------------------------------------------------------------------------------

def style_differences(pairs: Iterable[tuple[Sequence[int], Sequence[int]]]) -> np.ndarray:
    """(battles, features): ``(a - b) / (a + b + 1)`` per feature, from (attacker, defender) features."""
    rows = [(tuple(a), tuple(b)) for a, b in pairs]
    k = len(FEATURES)
    if not rows:
        return np.zeros((0, k))
    return count_differences(np.array([r[0] for r in rows], dtype=np.float64),
                             np.array([r[1] for r in rows], dtype=np.float64))


def count_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`style_differences` from two (battles, features) arrays of the attackers' and defenders' counts."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    k = len(FEATURES)
    if a.ndim != 2 or a.shape[1] != k or b.shape != a.shape:
        raise ValueError(f"style features must have {k} counts ({', '.join(FEATURES)}) per response")
    if (a < 0).any() or (b < 0).any():
        raise ValueError("style feature counts must be >= 0")
    return (a - b) / (a + b + 1.0)


def standardize(diffs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(z, mean, std, varies): each column minus its mean over the battles, over its population std; a
    column whose std is below ``CONSTANT_STD`` does not vary (``varies`` False) and becomes 0."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.shape[0] == 0:
        k = diffs.shape[1]
        return diffs.copy(), np.zeros(k), np.zeros(k), np.zeros(k, dtype=bool)
    mean = diffs.mean(axis=0)
    std = diffs.std(axis=0)
    varies = std >= CONSTANT_STD
    z = np.zeros_like(diffs)
    z[:, varies] = (diffs[:, varies] - mean[varies]) / std[varies]
    return z, mean, std, varies


# --------------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------------

class _Battles:
    """The battles of one fit in the structure of their design matrix (+1 at the attacker's column, -1 at the
    defender's, then the style columns), never built as a dense n x (m + k) matrix: products with it are a
    gather and a few ``bincount``s, so one Newton step costs O(n k) rather than O(n (m + k)^2). Battles of
    weight 0 (left out of a bootstrap round) are dropped; the style columns are held feature-major."""

    def __init__(self, a: np.ndarray, b: np.ndarray, x: np.ndarray, s: np.ndarray, w: np.ndarray, m: int):
        keep = np.flatnonzero(w > 0)
        if len(keep) < len(w):
            a, b, x, s, w = a[keep], b[keep], x[keep], s[keep], w[keep]
        self.a, self.b, self.s, self.w, self.m = a, b, s, w, m
        self.xt = np.ascontiguousarray(x.T)  # (k, n)
        self.k = self.xt.shape[0]
        self.pair = a * m + b
        self.w_loss = w * (1.0 - s)  # the objective's linear term: w (1 - s) z

    def linear(self, p: np.ndarray) -> np.ndarray:
        """design @ p"""
        m = self.m
        z = p[:m][self.a] - p[:m][self.b]
        if self.k:
            z += p[m:] @ self.xt
        return z

    def transpose_times(self, r: np.ndarray) -> np.ndarray:
        """design.T @ r"""
        m = self.m
        return np.concatenate([np.bincount(self.a, r, m) - np.bincount(self.b, r, m), self.xt @ r])

    def fisher(self, v: np.ndarray) -> np.ndarray:
        """design.T @ diag(v) @ design"""
        m, k = self.m, self.k
        out = np.empty((m + k, m + k))
        pairs = np.bincount(self.pair, v, m * m).reshape(m, m)
        out[:m, :m] = np.diag(np.bincount(self.a, v, m) + np.bincount(self.b, v, m)) - pairs - pairs.T
        vx = self.xt * v  # (k, n)
        cross = np.empty((m, k))
        for c in range(k):
            cross[:, c] = np.bincount(self.a, vx[c], m) - np.bincount(self.b, vx[c], m)
        out[:m, m:] = cross
        out[m:, :m] = cross.T
        out[m:, m:] = np.einsum("ki,li->kl", vx, self.xt)
        return out

    def log_likelihood(self, z: np.ndarray) -> float:
        """sum w (s log sigmoid(z) + (1 - s) log sigmoid(-z)) = w . log sigmoid(z) - w (1 - s) . z"""
        log_sigmoid = np.minimum(z, 0.0) - np.log1p(np.exp(-np.abs(z)))
        # einsum, not a BLAS dot: OpenBLAS's threaded ddot costs milliseconds on a busy machine
        return float(np.einsum("i,i->", self.w, log_sigmoid) - np.einsum("i,i->", self.w_loss, z))


def _objective(p, battles: _Battles, virtual, m, style_prior, z: np.ndarray | None = None) -> float:
    ll = battles.log_likelihood(battles.linear(p) if z is None else z)
    theta = p[:m]
    ll += float(np.sum(virtual * log_expit(theta[:, None] - theta[None, :])))
    return ll - 0.5 * style_prior * float(p[m:] @ p[m:])


def _newton(battles: _Battles, virtual, m, style_prior, p0) -> np.ndarray:
    """Maximise the penalized log-likelihood; returns (theta with mean 0, beta) in natural units."""
    k = battles.k
    s, w = battles.s, battles.w
    gauge = np.zeros((m + k, m + k))
    gauge[:m, :m] = 1.0 / m  # the likelihood ignores a shift of every theta: fix their mean
    ridge = np.zeros(m + k)
    ridge[m:] = style_prior
    p = np.array(p0, dtype=np.float64)
    p[:m] -= p[:m].mean()
    z = battles.linear(p)
    ll = _objective(p, battles, virtual, m, style_prior, z)
    for _ in range(_NEWTON_MAX_ITER):
        prob = expit(z)
        grad = battles.transpose_times(w * (s - prob))
        theta = p[:m]
        diff = theta[:, None] - theta[None, :]
        q = virtual * expit(-diff)  # d/dtheta of the virtual ties' log sigmoid
        grad[:m] += q.sum(axis=1) - q.sum(axis=0)
        grad -= ridge * p
        fisher = battles.fisher(w * prob * (1.0 - prob))
        f = virtual * expit(diff) * expit(-diff)
        f = f + f.T
        fisher[:m, :m] += np.diag(f.sum(axis=1)) - f
        fisher[np.diag_indices(m + k)] += ridge
        try:
            step = np.linalg.solve(fisher + gauge, grad)
        except np.linalg.LinAlgError:
            raise ValueError("style-controlled Bradley-Terry fit: the comparison graph is disconnected or a "
                             "style feature is collinear with the experts; use prior > 0 and style_prior > 0") from None
        if np.abs(step).max() <= _NEWTON_TOL:
            p[:m] -= p[:m].mean()
            return p
        t = 1.0
        for _ in range(60):
            cand = p + t * step
            z_c = battles.linear(cand)
            ll_c = _objective(cand, battles, virtual, m, style_prior, z_c)
            if ll_c >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        else:
            break
        p, ll, z = cand, ll_c, z_c
    raise ValueError("style-controlled Bradley-Terry fit did not converge (the MLE may not exist); "
                     "use prior > 0 and style_prior > 0")


def fit_style_bt(a: np.ndarray, b: np.ndarray, s: np.ndarray, x: np.ndarray, m: int, *,
                 weights: np.ndarray | None = None, prior: float = PRIOR_TIES, style_prior: float = STYLE_PRIOR,
                 start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(theta (m,), beta (k,)) in natural log-odds, theta with mean 0: the penalized logistic regression
    of the results ``s`` (0, 0.5, 1) on the expert columns (+1 attacker ``a``, -1 defender ``b``, indices
    below ``m``) and the style columns ``x`` (battles, k), each battle weighted by ``weights`` (default 1)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    s, x = np.asarray(s, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if prior < 0 or style_prior < 0:
        raise ValueError(f"prior and style_prior must be >= 0, not {prior} and {style_prior}")
    if not (a.shape == b.shape == s.shape and a.ndim == 1 and x.ndim == 2 and x.shape[0] == a.shape[0]):
        raise ValueError("a, b and s must be 1-d arrays of one length, x a (battles, features) array")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= m or np.any(a == b)):
        raise ValueError("expert indices must be in [0, m) and differ within a battle")
    if not np.all(np.isin(s, (0.0, 0.5, 1.0))):
        raise ValueError("results must be 0, 0.5 or 1")
    w = np.ones(len(a)) if weights is None else np.asarray(weights, dtype=np.float64)
    virtual = (prior / 2.0) * (1.0 - np.eye(m))  # prior virtual ties per pair: prior/2 wins each way
    p0 = np.zeros(m + x.shape[1]) if start is None else start
    p = _newton(_Battles(a, b, x, s, w, m), virtual, m, style_prior, p0)
    return p[:m], p[m:]


# --------------------------------------------------------------------------------------------------
# From the battle log
# --------------------------------------------------------------------------------------------------

def _bootstrap_threads(rounds: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4, rounds))


@dataclass(frozen=True)
class StyleControlled:
    """Style-controlled Bradley-Terry ratings and the style coefficients behind them.

    ``ratings``: expert -> {"rating", "lo", "hi"} (Elo scale; lo, hi None without bootstrap).
    ``coefficients``: feature -> {"log_odds", "elo", "lo", "hi"} (lo, hi on the Elo scale); all None for a
    feature that does not vary over the battles. ``n_battles``: battles in the fit; ``left_out``: battles
    of the log without style features (e.g. no stored response texts). ``mean``, ``std``: of each
    feature's raw difference over the battles of the fit.
    """

    ratings: dict[str, dict[str, float | None]]
    coefficients: dict[str, dict[str, float | None]]
    n_battles: int
    left_out: int
    battles_per_expert: dict[str, int] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)


def bt_style(battles: Iterable[BattleVotes], features: Mapping[str, tuple[Sequence[int], Sequence[int]]],
             rounds: int = 0, seed: int = 0, *, initial: float = 1000.0, prior: float = PRIOR_TIES,
             style_prior: float = STYLE_PRIOR, scale: float = SCALE, base: float = BASE) -> StyleControlled:
    """Style-controlled Bradley-Terry on the battles that have features: ``features`` maps battle_id ->
    (attacker's ``StyleFeatures``, defender's). Other battles are left out (counted in ``left_out``)."""
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, not {rounds}")
    battles = list(battles)
    used = [bt for bt in battles if bt.battle_id in features]
    experts = sorted({e for bt in used for e in (bt.attacker, bt.defender)})
    index = {e: i for i, e in enumerate(experts)}
    k = len(FEATURES)
    counts = [features[bt.battle_id] for bt in used]
    return bt_style_arrays(np.array([index[bt.attacker] for bt in used], dtype=np.int64),
                           np.array([index[bt.defender] for bt in used], dtype=np.int64),
                           np.array([battle_result(bt) for bt in used], dtype=np.float64),
                           np.array([tuple(c[0]) for c in counts], dtype=np.float64).reshape(-1, k),
                           np.array([tuple(c[1]) for c in counts], dtype=np.float64).reshape(-1, k),
                           experts, len(battles) - len(used), rounds, seed, initial=initial, prior=prior,
                           style_prior=style_prior, scale=scale, base=base)


def bt_style_arrays(a: np.ndarray, b: np.ndarray, s: np.ndarray, counts_a: np.ndarray, counts_b: np.ndarray,
                    experts: Sequence[str], left_out: int = 0, rounds: int = 0, seed: int = 0, *,
                    initial: float = 1000.0, prior: float = PRIOR_TIES, style_prior: float = STYLE_PRIOR,
                    scale: float = SCALE, base: float = BASE) -> StyleControlled:
    """:func:`bt_style` on the battles of the fit given as arrays in log order: attacker and defender indices
    into the sorted ``experts``, the results, both responses' (battles, features) counts; ``left_out`` battles
    of the log had no features. Experts that fought none of these battles are left out of the fit."""
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, not {rounds}")
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    none = {"log_odds": None, "elo": None, "lo": None, "hi": None}
    if not len(a):
        return StyleControlled({}, {f: dict(none) for f in FEATURES}, 0, left_out)
    present = np.unique(np.concatenate([a, b]))  # the experts of the fit, in sorted-name order
    remap = np.full(len(experts), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    a, b = remap[a], remap[b]
    index = {experts[int(i)]: j for j, i in enumerate(present)}
    m = len(index)
    n_used = len(a)
    diffs = count_differences(counts_a, counts_b)
    z, mean, std, varies = standardize(diffs)
    x = z[:, varies]
    kw = dict(prior=prior, style_prior=style_prior)
    theta, beta = fit_style_bt(a, b, s, x, m, **kw)
    to_elo = scale / math.log(base)
    ratings = theta * to_elo - (theta * to_elo).mean() + initial
    lo = hi = beta_lo = beta_hi = None
    if rounds:
        rng = np.random.default_rng(seed)
        start = np.concatenate([theta, beta])
        th_r, be_r = [], []
        # One resample at a time (never all rounds' counts in memory); the rounds are
        # fitted on all cores (NumPy releases the GIL in the fit's loops), a few in flight, collected in order.
        workers = _bootstrap_threads(rounds)

        def collect_first() -> None:
            t_, b_ = pending.popleft().result()
            th_r.append(t_ * to_elo - (t_ * to_elo).mean() + initial)
            be_r.append(b_ * to_elo)

        with ThreadPoolExecutor(workers, thread_name_prefix="bt-style") as pool:
            pending: deque = deque()
            for _ in range(rounds):
                c = np.bincount(rng.integers(0, n_used, n_used), minlength=n_used)
                pending.append(pool.submit(fit_style_bt, a, b, s, x, m, weights=c, start=start, **kw))
                while len(pending) > workers or (pending and pending[0].done()):
                    collect_first()
            while pending:
                collect_first()
        lo, hi = np.percentile(np.array(th_r), CI_PERCENTILES, axis=0)
        if x.shape[1]:
            beta_lo, beta_hi = np.percentile(np.array(be_r), CI_PERCENTILES, axis=0)
    coefficients: dict[str, dict[str, float | None]] = {}
    j = 0
    for f, v in zip(FEATURES, varies):
        if not v:
            coefficients[f] = dict(none)
            continue
        coefficients[f] = {"log_odds": float(beta[j]), "elo": float(beta[j] * to_elo),
                           "lo": None if beta_lo is None else float(beta_lo[j]),
                           "hi": None if beta_hi is None else float(beta_hi[j])}
        j += 1
    per_expert = {e: int(np.sum(a == i) + np.sum(b == i)) for e, i in index.items()}
    return StyleControlled(
        {e: {"rating": float(ratings[i]), "lo": None if lo is None else float(lo[i]),
             "hi": None if hi is None else float(hi[i])} for e, i in index.items()},
        coefficients, n_used, left_out, per_expert,
        {f: float(v) for f, v in zip(FEATURES, mean)}, {f: float(v) for f, v in zip(FEATURES, std)})
