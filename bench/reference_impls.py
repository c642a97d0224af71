"""Transcriptions of the real reference implementations the benchmarks compare against.

These are TRANSCRIPTIONS, not vendored code. google/active-learning is not a package (no setup.py,
not on PyPI; its requirements pin TensorFlow and Keras for the experiment runner), and its
``kCenterGreedy.select_batch_`` raises TypeError under numpy 2.4 at its final print (``"%0.2f" %`` a
1-element array); FastChat's ``fschat`` is not installed here and pulls in the serving stack. So the
algorithms below were copied from the upstream source, line for line where possible (checked: the
function bodies of ``get_matchups_models``, ``preprocess_for_bt``, ``bt_loss_and_grad``, ``fit_bt``,
``scale_and_offset``, ``compute_bt`` and ``kCenterGreedy.update_distances`` are AST-identical to
upstream's), with the same numpy / scipy / sklearn / pandas calls, the same data layout and the same
defaults. What differs from upstream is listed next to each
function ("Deviations"); none of it changes the arithmetic. Upstream code is Apache-2.0 licensed.

Sources read (``git show <commit>:<path>`` on a mirror of the repository):

* google/active-learning, ``sampling_methods/kcenter_greedy.py`` (class ``kCenterGreedy``) and
  ``sampling_methods/sampling_def.py`` (``SamplingMethod.flatten_X``), at commit
  ``efedd8f1c45421ee13af2b9ff593ad31f3835942`` (2019-05-10, the repository's HEAD).
* lm-sys/FastChat, ``fastchat/serve/monitor/rating_systems.py`` (``get_matchups_models``,
  ``preprocess_for_bt``, ``bt_loss_and_grad``, ``fit_bt``, ``scale_and_offset``, ``compute_bt``,
  ``compute_bootstrap_bt``), at commit ``0e6d3e4beaab66f4d3f93db72541a4abab8af28d`` (2025-04-12, HEAD;
  the file last changed in ``e208d5677c6837d590b81cb03847c0b9de100765``, "Accelerate Bradley Terry MLE
  model fitting (#3523)"). ``fastchat/serve/monitor/elo_analysis.py`` at the same commit calls
  ``compute_bootstrap_bt(battles, num_round=..., num_cpu=...)`` then ``compute_bt(battles)``.

The third reference, datasketch ``MinHash`` + ``MinHashLSH`` (near-duplicate detection), is the real
package (``datasketch==2.0.0``, in requirements/lock.txt); bench_dedup.py imports it directly.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from functools import partial

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import pairwise_distances
from tqdm import tqdm

ACTIVE_LEARNING_COMMIT = "efedd8f1c45421ee13af2b9ff593ad31f3835942"
ACTIVE_LEARNING_PATH = "google/active-learning:sampling_methods/kcenter_greedy.py"
FASTCHAT_COMMIT = "0e6d3e4beaab66f4d3f93db72541a4abab8af28d"
FASTCHAT_PATH = "lm-sys/FastChat:fastchat/serve/monitor/rating_systems.py"


# --------------------------------------------------------------------------------------------------
# google/active-learning: sampling_methods/kcenter_greedy.py, class kCenterGreedy
# --------------------------------------------------------------------------------------------------


class kCenterGreedy:
    """google/active-learning's ``kCenterGreedy`` (Sener & Savarese's k-Center-Greedy).

    Same state and arithmetic as upstream: ``min_distances`` is an (n, 1) array; adding centers calls
    ``sklearn.metrics.pairwise_distances(self.features, self.features[new_centers], metric)`` and keeps
    ``np.minimum(self.min_distances, dist)``, i.e. one (n x new centers) distance block per update, never
    a recomputation against all centers; each pick is ``np.argmax(self.min_distances)`` (first maximum on
    ties). Features are the flattened ``X`` (``SamplingMethod.flatten_X``), used as given (a float32
    matrix stays float32, and sklearn then computes in float64 blocks and returns float32 distances).

    Deviations: no ``SamplingMethod`` base class (only ``flatten_X`` is needed, inlined); ``np.product``
    (removed in numpy 2) is ``np.prod``; the py2 ``__future__`` imports are gone; the final "Maximum
    distance from cluster centers" print is kept but goes through ``verbose``, and the value (upstream's
    ``max(self.min_distances)``, a 1-element array that numpy 2.4 no longer %-formats) is stored as a
    float in ``self.max_distance``. ``select_batch_``'s ``model.transform`` attempt is kept: bench callers
    pass ``model=None``, so it raises and upstream's ``except`` branch (use ``flat_X``) runs, as it does
    upstream for models without ``transform``.
    """

    def __init__(self, X, y, seed, metric="euclidean", verbose=False):
        self.X = X
        self.y = y
        self.flat_X = self.flatten_X()
        self.name = "kcenter"
        self.features = self.flat_X
        self.metric = metric
        self.min_distances = None
        self.n_obs = self.X.shape[0]
        self.already_selected = []
        self.verbose = verbose
        self.max_distance = None

    def flatten_X(self):
        shape = self.X.shape
        flat_X = self.X
        if len(shape) > 2:
            flat_X = np.reshape(self.X, (shape[0], np.prod(shape[1:])))
        return flat_X

    def update_distances(self, cluster_centers, only_new=True, reset_dist=False):
        """Update min distances given cluster centers (upstream docstring: only_new: only calculate
        distance for newly selected points and update min_distances; reset_dist: reset min_distances)."""
        if reset_dist:
            self.min_distances = None
        if only_new:
            cluster_centers = [d for d in cluster_centers if d not in self.already_selected]
        if cluster_centers:
            # Update min_distances for all examples given new cluster center.
            x = self.features[cluster_centers]
            dist = pairwise_distances(self.features, x, metric=self.metric)

            if self.min_distances is None:
                self.min_distances = np.min(dist, axis=1).reshape(-1, 1)
            else:
                self.min_distances = np.minimum(self.min_distances, dist)

    def select_batch_(self, model, already_selected, N, **kwargs):
        """Greedily forms a batch of ``N`` minimising the maximum distance of any point to a center."""
        try:
            # Assumes that the transform function takes in original data and not flattened data.
            self._print("Getting transformed features...")
            self.features = model.transform(self.X)
            self._print("Calculating distances...")
            self.update_distances(already_selected, only_new=False, reset_dist=True)
        except Exception:  # upstream: a bare ``except:``
            self._print("Using flat_X as features.")
            self.update_distances(already_selected, only_new=True, reset_dist=False)

        new_batch = []

        for _ in range(N):
            if self.already_selected is None:
                # Initialize centers with a randomly selected datapoint
                ind = np.random.choice(np.arange(self.n_obs))
            else:
                ind = np.argmax(self.min_distances)
            # New examples should not be in already selected since those points
            # should have min_distance of zero to a cluster center.
            assert ind not in already_selected

            self.update_distances([ind], only_new=True, reset_dist=False)
            new_batch.append(ind)
        self.max_distance = float(max(self.min_distances)[0])  # upstream formats max(...) directly
        self._print("Maximum distance from cluster centers is %0.2f" % self.max_distance)  # noqa: UP031

        self.already_selected = already_selected

        return new_batch

    def _print(self, msg):
        if self.verbose:
            print(msg)


def active_learning_kcenter(x: np.ndarray, k: int, first: int) -> list[int]:
    """``k`` picks of the transcribed ``kCenterGreedy`` starting from center ``first``: upstream's
    ``select_batch_(model=None, already_selected=[first], N=k - 1)``, i.e. ``first`` is the one labelled
    point and the batch is the next ``k - 1`` greedy picks. Returns ``[first] + batch`` as ints."""
    sampler = kCenterGreedy(x, None, 0)
    batch = sampler.select_batch_(model=None, already_selected=[first], N=k - 1)
    return [int(first)] + [int(i) for i in batch]


# --------------------------------------------------------------------------------------------------
# lm-sys/FastChat: fastchat/serve/monitor/rating_systems.py (Bradley-Terry parts)
# --------------------------------------------------------------------------------------------------


def get_matchups_models(df):
    n_rows = len(df)
    model_indices, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    matchups = np.column_stack([model_indices[:n_rows], model_indices[n_rows:]])
    return matchups, models.to_list()


def preprocess_for_bt(df):
    """in BT we only need the unique (matchup,outcome) sets along with the weights of how often they occur"""
    n_rows = len(df)
    # the 3 columns of schedule represent: model_a id, model_b id, outcome_id
    schedule = np.full((n_rows, 3), fill_value=1, dtype=np.int32)
    # set the two model cols by mapping the model names to their int ids
    schedule[:, [0, 1]], models = get_matchups_models(df)
    # map outcomes to integers (must be same dtype as model ids so it can be in the same array)
    # model_a win -> 2, tie -> 1 (prefilled by default), model_b win -> 0
    schedule[df["winner"] == "model_a", 2] = 2
    schedule[df["winner"] == "model_b", 2] = 0
    # count the number of occurances of each observed result
    matchups_outcomes, weights = np.unique(schedule, return_counts=True, axis=0)
    matchups = matchups_outcomes[:, [0, 1]]
    # map 2 -> 1.0, 1 -> 0.5, 0 -> 0.0 which will be used as labels during optimization
    outcomes = matchups_outcomes[:, 2].astype(np.float64) / 2.0
    weights = weights.astype(np.float64)
    # each possible result is weighted according to number of times it occured in the dataset
    return matchups, outcomes, models, weights


def bt_loss_and_grad(ratings, matchups, outcomes, weights, alpha=1.0):
    matchup_ratings = ratings[matchups]
    logits = alpha * (matchup_ratings[:, 0] - matchup_ratings[:, 1])
    probs = expit(logits)
    # this form naturally counts a draw as half a win and half a loss
    loss = -((np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)) * weights).sum()
    matchups_grads = -alpha * (outcomes - probs) * weights
    model_grad = np.zeros_like(ratings)
    # aggregate gradients at the model level using the indices in matchups
    np.add.at(
        model_grad,
        matchups[:, [0, 1]],
        matchups_grads[:, None] * np.array([1.0, -1.0], dtype=np.float64),
    )
    return loss, model_grad


def fit_bt(matchups, outcomes, weights, n_models, alpha, tol=1e-6):
    initial_ratings = np.zeros(n_models, dtype=np.float64)
    result = minimize(
        fun=bt_loss_and_grad,
        x0=initial_ratings,
        args=(matchups, outcomes, weights, alpha),
        jac=True,
        method="L-BFGS-B",
        options={"disp": False, "maxiter": 100, "gtol": tol},
    )
    return result["x"]


def scale_and_offset(
    ratings,
    models,
    scale=400,
    init_rating=1000,
    baseline_model="mixtral-8x7b-instruct-v0.1",
    baseline_rating=1114,
):
    """convert ratings from the natural scale to the Elo rating scale with an anchored baseline"""
    scaled_ratings = (ratings * scale) + init_rating
    if baseline_model in models:
        baseline_idx = models.index(baseline_model)
        scaled_ratings += baseline_rating - scaled_ratings[..., [baseline_idx]]
    return scaled_ratings


def compute_bt(df, base=10.0, scale=400.0, init_rating=1000, tol=1e-6):
    matchups, outcomes, models, weights = preprocess_for_bt(df)
    ratings = fit_bt(matchups, outcomes, weights, len(models), math.log(base), tol)
    scaled_ratings = scale_and_offset(ratings, models, scale, init_rating=init_rating)
    return pd.Series(scaled_ratings, index=models).sort_values(ascending=False)


def fastchat_bootstrap_weights(battles, num_round):
    """The resampled cell weights ``compute_bootstrap_bt`` fits (its first lines, split out so the bench
    can fit the SAME resamples with ours): (matchups, outcomes, models, weights, boot_weights)."""
    matchups, outcomes, models, weights = preprocess_for_bt(battles)
    rng = np.random.default_rng(seed=0)
    idxs = rng.multinomial(n=len(battles), pvals=weights / weights.sum(), size=(num_round))
    boot_weights = idxs.astype(np.float64) / len(battles)
    return matchups, outcomes, models, weights, boot_weights


def compute_bootstrap_bt(
    battles,
    num_round,
    base=10.0,
    scale=400.0,
    init_rating=1000.0,
    tol=1e-6,
    num_cpu=None,
    progress=True,
):
    """Upstream's ``compute_bootstrap_bt``. Deviation: ``progress=False`` disables the tqdm bar (upstream
    always shows it); the pool (``mp.Pool(num_cpu or os.cpu_count())`` + ``imap_unordered``, so rows come
    back in completion order) is upstream's."""
    matchups, outcomes, models, weights = preprocess_for_bt(battles)
    # bootstrap sample the unique outcomes and their counts directly using the multinomial distribution
    rng = np.random.default_rng(seed=0)
    idxs = rng.multinomial(n=len(battles), pvals=weights / weights.sum(), size=(num_round))
    # only the distribution over their occurance counts changes between samples (and it can be 0)
    boot_weights = idxs.astype(np.float64) / len(battles)

    # the only thing different across samples is the distribution of weights
    bt_fn = partial(fit_bt, matchups, outcomes, n_models=len(models), alpha=np.log(base), tol=tol)
    with mp.Pool(num_cpu if num_cpu else os.cpu_count()) as pool:
        results = list(tqdm(pool.imap_unordered(bt_fn, boot_weights), total=num_round, disable=not progress))

    ratings = np.array(results)
    scaled_ratings = scale_and_offset(ratings, models, scale, init_rating)
    df = pd.DataFrame(scaled_ratings, columns=models)
    return df[df.median().sort_values(ascending=False).index]
