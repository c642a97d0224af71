"""The writer at scale: each writer step's time and peak memory on a synthetic store of N instructions and M votes.

    python bench/bench_scale.py --instructions 1000000 --votes 10000000 [--dim 384] [--json FILE]

It builds (once per size, cached under ``--cache``) a store shaped like one after months of flywheel runs, then
runs one flywheel run's writer steps on a fresh copy of it, **each in its own subprocess** (its peak RSS is that
step's alone: the child's VmHWM), through the functions the DAG and the CLI call
(``stages.base.run_as_writer`` with the real stage, ``store.snapshots.create_snapshot``):

=============== ========================================================================================
ingest          the run's mined result files (N/20 new instructions, files of 10k rows, 1 in 10 a near
                duplicate of a stored one) gated (Great Expectations) and merged
dedup           those N/20 checked against the MinHash index of every stored instruction (N signatures)
compress-select k-center greedy over the run's clean pool (``--pool``, default 5000, embedded, D-dim float32)
                warm-started from every selected instruction's embedding (~0.55 N), budget 0.5 of the pool
plan            the missing battles of every selected instruction without battles (N/20 + the picks), two
                defenders each, and their response jobs
rate + gold     Elo, Bradley-Terry (100 bootstrap rounds), style-controlled BT (100 rounds) and gold over the
                whole vote log: M votes = M/10 battles, 5 judges x both orders, probabilistic votes for 4 of
                5 judges, execution evidence on every battle
snapshot        every gold instruction (M/20), every battle (M/10) and every response (3 M/20) with its votes,
                as Parquet + JSONL, hashed, published manifest-last to the (local) object store
=============== ========================================================================================

The synthetic data is made in DuckDB SQL and NumPy (no Python loop over rows): instruction texts from a word
list (MinHash signatures computed with the real hasher), clustered unit-norm float32 embeddings, 8 experts, battles
with Bradley-Terry-like outcomes and a first-position bias, markdown responses. Why the compress pool is a fixed
size and not a share of N: the exact warm start costs pool x selected x D, so a pool growing with N would make the
step quadratic by construction (see bench/SCALE.md).

``--json FILE`` writes ``{"steps": {name: {"seconds", "peak_rss_mb", ...}}, "instructions", "votes", "dim", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = "bench-scale"
SEED_RUN = "seed-run"
EXPERTS = 8
JUDGES = 5  # per battle, each voting in both orders
VOTES_PER_BATTLE = 2 * JUDGES
DEFENDERS = 2
FILE_ROWS = 10_000  # rows per mined result file
EMBED_MODEL = "bench-scale-embedder"
BUILD_VERSION = 4  # bump when the synthetic store changes: cached stores of another version are built again
STEPS = ("ingest", "dedup", "compress-select", "plan", "rate+gold", "snapshot")
WORDS = ("write a python function that returns the sum of list string dictionary graph tree sort merge parse json "
         "file count unique values matrix path shortest binary search stack queue heap integer array given each "
         "element prime number reverse words characters frequency longest substring palindrome interval overlap "
         "schedule cache lru decorator class method generator iterator recursion memo dynamic programming knapsack "
         "coins change minimum maximum window sliding two pointers hash set linked node cycle detect").split()


def shape(n: int, m: int, pool: int) -> dict[str, int]:
    battles = max(DEFENDERS, m // VOTES_PER_BATTLE)
    battled = battles // DEFENDERS
    unbattled = n // 20
    pool = min(pool, n // 10)
    if battled + unbattled + pool > n:
        raise SystemExit(f"{m} votes need {battled} battled instructions: more than {n} instructions allow")
    return {"instructions": n, "votes": battles * VOTES_PER_BATTLE, "battles": battles, "battled": battled,
            "selected_unbattled": unbattled, "pool": pool, "selected": battled + unbattled,
            "other": n - battled - unbattled - pool, "new_mined": n // 20, "responses": battled * (DEFENDERS + 1)}


# ------------------------------------------------------------------------------------------------ config


def write_config(home: Path) -> Path:
    import yaml

    from warriorflow.config import DEFAULT_SETTINGS_FILE

    experts = {"experts": [{"name": f"e{i}", "backend": "openai", "weights_id": f"bench-e{i}",
                            "model": {"endpoint": f"http://127.0.0.1:9/e{i}/v1"}, "roles": ["mine", "answer", "judge"]}
                           for i in range(EXPERTS)]}
    (home / "experts.yaml").write_text(yaml.safe_dump(experts))
    settings = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    settings["experts_file"] = str(home / "experts.yaml")
    settings["paths"] = {**settings.get("paths", {}), "home": str(home / "work"), "duckdb": "warriorflow.duckdb"}
    settings["object_store"] = {"uri": "objects"}
    settings.setdefault("compression", {})["embed_model"] = EMBED_MODEL
    settings.setdefault("arena", {}).update({"both_orders": True, "defenders_per_instruction": DEFENDERS})
    path = home / "settings.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------ build

# a response's text; its style counts depend on h % 60 only (i is one token wherever it appears)
RESPONSE_TEXT = """
    CASE WHEN h % 3 = 0 THEN '## Approach\n- walk the input once\n- keep a **running** total\n\n' ELSE '' END
    || 'Here is a solution for case ' || i || ':\n\n```python\ndef solve_' || i || '(xs):\n'
    || repeat('    total = sum(x for x in xs if x % ' || (1 + h % 5) || ')\n', 1 + (h % 4))
    || '    return total\n```\n'
    || CASE WHEN h % 2 = 0 THEN '\nIt runs in **O(n)** time; ' || repeat('it is simple. ', h % 6) ELSE '' END"""
SQL_TEXT = """
'write a python function that ' || array_to_string(list_transform(range(18 + ({i} % 7)),
    lambda k: $words[1 + (hash({i} * 131 + k) % $n_words)::INTEGER]), ' ') || ' (case ' || {i} || ')'"""


def build(home: Path, s: dict[str, int], dim: int) -> None:
    """The base store (and the run's mined files) for shape ``s``."""
    import numpy as np
    import pyarrow as pa

    from warriorflow.config import load_config
    from warriorflow.method import ids
    from warriorflow.method.minhash import ALGORITHM_VERSION, MinHasher
    from warriorflow.store.rating_store import RatingStore

    t0 = time.perf_counter()
    cfg = load_config(write_config(home))
    base = home / "base.duckdb"
    for p in (base, home / "base.duckdb.wal"):
        p.unlink(missing_ok=True)
    d = cfg.settings.dedup
    words = list(WORDS)
    with RatingStore(base) as store:
        con = store.con
        from warriorflow.stages.plan import register_experts

        register_experts(cfg, store)  # the experts joined before any battle (the planner's newcomer rule)
        con.execute("UPDATE experts SET first_seen_at = TIMESTAMP '2025-12-01', updated_at = TIMESTAMP '2025-12-01'")
        params = {"words": words, "n_words": len(words)}
        n, battled, unb, pool = s["instructions"], s["battled"], s["selected_unbattled"], s["pool"]
        text = SQL_TEXT.format(i="i")
        con.execute(f"""
            INSERT INTO instructions (instruction_id, text, expert, temperature, top_p, seed, prefix_sha256, mined_at,
                                      run_id, status, difficulty)
            SELECT md5('ins' || i), {text}, 'e' || (hash(i * 7) % {EXPERTS}), 1.0, 0.99, i, 'p',
                   TIMESTAMP '2026-01-01' + to_seconds(i), '{SEED_RUN}',
                   CASE WHEN i < {battled + unb} THEN 'selected' WHEN i < {battled + unb + pool} THEN 'clean'
                        ELSE 'scored' END, 7.0
            FROM range({n}) t(i)""", params)
        con.execute(f"""
            INSERT INTO instruction_selections (instruction_id, run_id, pick_rank, embed_model, selected_at)
            SELECT md5('ins' || i), '{SEED_RUN}', i, '{EMBED_MODEL}', TIMESTAMP '2026-01-02' + to_seconds(i)
            FROM range({battled + unb}) t(i)""")
        print(f"  instructions: {time.perf_counter() - t0:.0f}s", flush=True)
        # MinHash signatures of every stored instruction, with the real hasher
        hasher = MinHasher(num_perm=d.num_perm, seed=d.seed, shingle_size=d.shingle_size)
        chunk = 100_000
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            texts = [r[0] for r in con.execute(f"SELECT {text} FROM range({lo}, {hi}) t(i) ORDER BY i",
                                               params).fetchall()]
            sigs = hasher.signatures(texts).astype("<u4")
            src = pa.table({"i": pa.array(np.arange(lo, hi, dtype=np.int64)),
                            "sig": pa.array([sigs[j].tobytes() for j in range(len(sigs))], type=pa.binary())})
            con.complete()
            con.register("_sig_src", src)
            con.execute(f"""INSERT INTO minhash_signatures SELECT md5('ins' || i), {d.num_perm}, {d.seed},
                            {d.shingle_size}, {ALGORITHM_VERSION}, sig, TIMESTAMP '2026-01-01' + to_seconds(i)
                            FROM _sig_src""")
            con.unregister("_sig_src")
        print(f"  signatures: {time.perf_counter() - t0:.0f}s", flush=True)
        # clustered unit-norm embeddings of the selected instructions and the clean pool
        rng = np.random.default_rng(0)
        centers = rng.standard_normal((256, dim)).astype(np.float32)
        embedded = battled + unb + pool
        chunk = max(1, (1 << 24) // dim)
        for lo in range(0, embedded, chunk):
            hi = min(embedded, lo + chunk)
            x = centers[rng.integers(0, len(centers), hi - lo)] + 0.6 * rng.standard_normal((hi - lo, dim),
                                                                                          dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            vec = pa.FixedSizeListArray.from_arrays(pa.array(x.astype(np.float32).ravel()), dim)
            src = pa.table({"i": pa.array(np.arange(lo, hi, dtype=np.int64)),
                            "vector": vec.cast(pa.list_(pa.float32()))})
            con.complete()
            con.register("_emb_src", src)
            con.execute(f"INSERT INTO embeddings (instruction_id, model, dim, vector) "
                        f"SELECT md5('ins' || i), '{EMBED_MODEL}', {dim}, vector FROM _emb_src")
            con.unregister("_emb_src")
        print(f"  embeddings: {time.perf_counter() - t0:.0f}s", flush=True)
        # battles: the miner attacks, two defenders; 5 judges of the 5 others... both orders
        con.execute(f"""
            CREATE TEMP TABLE _b AS
            SELECT i, k, 2 * i + k AS pos, (hash(i * 7) % {EXPERTS})::INTEGER AS a,
                   ((hash(i * 7) % {EXPERTS})::INTEGER + CASE WHEN k = 0 THEN o1 ELSE o2 END) % {EXPERTS} AS d
            FROM (SELECT i, (1 + hash(i * 11) % 7)::INTEGER AS o1,
                         (1 + (hash(i * 11) % 7 + 1 + hash(i * 13) % 6) % 7)::INTEGER AS o2
                  FROM range({battled}) t(i)),
                 range(2) u(k)""")
        con.execute(f"""
            INSERT INTO responses (response_id, instruction_id, expert, text, sampling, seed, finish_reason,
                                   prompt_tokens, completion_tokens, run_id)
            SELECT md5('res' || i || '-' || e), md5('ins' || i), 'e' || e, {RESPONSE_TEXT},
                   '{{"temperature": 0.7, "top_p": 0.95}}', 0, 'stop', 40, 120, '{SEED_RUN}'
            FROM (SELECT DISTINCT i, unnest([a, d]) AS e FROM _b),
                 LATERAL (SELECT (hash(i * 17 + e) % 1000003)::BIGINT AS h)""")
        insert_style_counts(con)
        con.execute(f"""
            INSERT INTO battles (battle_id, instruction_id, attacker, defender, attacker_response_id,
                                 defender_response_id, battle_order, status, run_id, planned_at, completed_at,
                                 judges, judge_calls, judge_calls_saved)
            SELECT md5('bat' || pos), md5('ins' || i), 'e' || a, 'e' || d, md5('res' || i || '-' || a),
                   md5('res' || i || '-' || d), pos, 'done', '{SEED_RUN}', TIMESTAMP '2026-01-03',
                   TIMESTAMP '2026-01-04',
                   list_transform(list_filter(range({EXPERTS}), lambda x: x <> a AND x <> d)[1:{JUDGES}],
                                  lambda x: 'e' || x), {VOTES_PER_BATTLE}, 0
            FROM _b""")
        print(f"  responses, battles: {time.perf_counter() - t0:.0f}s", flush=True)
        # votes: P(attacker better) from the strength gap; judge e7 votes without probabilities
        con.execute(f"""
            INSERT INTO votes (vote_id, battle_id, judge, shown_order, raw_verdict, verdict, p_a, p_b, p_tie,
                               raw_text, run_id)
            WITH v AS (
                SELECT b.pos, j, o, 'e' || j AS judge,
                       1.0 / (1.0 + exp(-((b.a - b.d) * 0.15
                                          + ((hash(b.pos * 31 + j) % 1000) / 1000.0 - 0.5) * 3))) AS p,
                       0.1 + (hash(b.pos * 37 + j) % 100) / 1000.0 AS t
                FROM _b b,
                     LATERAL (SELECT unnest(list_filter(range({EXPERTS}), lambda x: x <> b.a AND x <> b.d)[1:{JUDGES}])
                                    AS j), range(2) u(o)
            ), pos AS (
                SELECT *, CASE WHEN o = 0 THEN p ELSE 1 - p END * (1 - t) * 1.3 AS qa,
                          CASE WHEN o = 0 THEN 1 - p ELSE p END * (1 - t) AS qb FROM v
            ), norm AS (
                SELECT *, qa / (qa + qb + t) AS pa, qb / (qa + qb + t) AS pb, t / (qa + qb + t) AS pt FROM pos
            )
            SELECT md5('vote' || pos || '-' || j || '-' || o), md5('bat' || pos), judge,
                   CASE WHEN o = 0 THEN 'attacker_first' ELSE 'defender_first' END,
                   CASE WHEN pa >= pb AND pa >= pt THEN 'A' WHEN pb >= pt THEN 'B' ELSE 'tie' END AS raw,
                   CASE WHEN pa >= pb AND pa >= pt THEN (CASE WHEN o = 0 THEN 'attacker' ELSE 'defender' END)
                        WHEN pb >= pt THEN (CASE WHEN o = 0 THEN 'defender' ELSE 'attacker' END) ELSE 'tie' END,
                   CASE WHEN j = 0 THEN NULL ELSE pa END,
                   CASE WHEN j = 0 THEN NULL ELSE pb END,
                   CASE WHEN j = 0 THEN NULL ELSE pt END,
                   '[[' || CASE WHEN pa >= pb AND pa >= pt THEN 'A' WHEN pb >= pt THEN 'B' ELSE 'Tie' END || ']]',
                   '{SEED_RUN}'
            FROM norm""")
        print(f"  votes: {time.perf_counter() - t0:.0f}s", flush=True)
        con.execute(f"""
            INSERT INTO executions
            SELECT md5('bat' || pos), role, md5('res' || i || '-' || CASE WHEN role = 'attacker' THEN a ELSE d END),
                   h % 10 <> 0, h % 20 <> 0,
                   CASE WHEN h % 20 = 0 THEN 'no_code' WHEN h % 7 = 0 THEN 'error' ELSE 'ok' END,
                   3, h % 4, 2, h % 3, 1, (h // 7) % 2, 0, 0, 1, 0.05, '{{}}', '{SEED_RUN}', TIMESTAMP '2026-01-04'
            FROM _b, (VALUES ('attacker'), ('defender')) r(role),
                 LATERAL (SELECT (hash(pos * 41 + CASE role WHEN 'attacker' THEN 1 ELSE 2 END) % 1000003)::BIGINT AS h)
            """)
        con.execute("DROP TABLE _b")
        con.execute("CHECKPOINT")
        print(f"  executions: {time.perf_counter() - t0:.0f}s", flush=True)
        # the run's mined files: new texts, 1 in 10 a near duplicate of a stored instruction
        new = s["new_mined"]
        rows = con.execute(f"""
            SELECT CASE WHEN j % 10 = 0 THEN regexp_replace({SQL_TEXT.format(i='(j * 37 % ' + str(n) + ')')},
                                                            ' \\(case ', ' (variant ')
                        ELSE replace({SQL_TEXT.format(i=f'({n} + j)')}, 'write a python', 'write a rust') END,
                   'e' || (j % {EXPERTS}), (CAST([1.0, 1.1, 1.2] AS DOUBLE[]))[1 + j % 3],
                   (CAST([0.99, 0.995, 1.0] AS DOUBLE[]))[1 + (j // 3) % 3], j
            FROM range({new}) t(j) ORDER BY j""", params).fetchall()
    mine = home / "mined"
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir(parents=True)
    for part, lo in enumerate(range(0, len(rows), FILE_ROWS)):
        lines = []
        for text, expert, temp, top_p, seed in rows[lo: lo + FILE_ROWS]:
            lines.append(json.dumps({"instruction_id": ids.instruction_id(text), "text": text, "expert": expert,
                                     "temperature": temp, "top_p": top_p, "seed": seed, "prefix_sha256": "p",
                                     "mined_at": "2026-06-01T00:00:00", "run_id": RUN_ID}, sort_keys=True))
        (mine / f"part-{part:05d}.jsonl").write_text("\n".join(lines) + "\n")
    print(f"  mined files: {time.perf_counter() - t0:.0f}s", flush=True)


def insert_style_counts(con) -> None:
    """The style counts of every response without them, as the response ingest stores them: the real function on
    one text per class of h % 60 (a response's counts depend on nothing else; checked on two texts per class)."""
    import pyarrow as pa

    from warriorflow.method.style_control import FEATURES, FEATURES_VERSION, style_features

    classes = []
    one = RESPONSE_TEXT.replace("h %", "$h %").replace("|| i ||", "|| $i ||")
    for c in range(60):
        texts = [con.execute(f"SELECT {one}", {"h": c + 60 * k, "i": i}).fetchone()[0]
                 for k, i in ((0, 0), (3, 98765))]
        counts = {style_features(t) for t in texts}
        assert len(counts) == 1, "a response's style counts must depend on h % 60 only"
        classes.append((c, *counts.pop()))
    con.complete()
    con.register("_style_src", pa.table({"c": [x[0] for x in classes],
                                         **{f: [x[1 + j] for x in classes] for j, f in enumerate(FEATURES)}}))
    con.execute(f"""
        INSERT INTO response_style
        SELECT r.response_id, {FEATURES_VERSION}, s.length, s.headers, s.lists, s.bold
        FROM (SELECT response_id, CAST(regexp_extract(text, 'case ([0-9]+):', 1) AS BIGINT) AS i,
                     CAST(substr(expert, 2) AS BIGINT) AS e FROM responses) r
        JOIN _style_src s ON s.c = (hash(r.i * 17 + r.e) % 1000003)::BIGINT % 60
        WHERE r.response_id NOT IN (SELECT response_id FROM response_style)""")
    con.unregister("_style_src")


# ------------------------------------------------------------------------------------------------ steps


def run_step(step: str, settings: Path) -> dict:
    """One writer step, as the DAG runs it (in this process: the parent measures its peak RSS)."""
    from warriorflow.config import load_config
    from warriorflow.stages.base import run_as_writer

    cfg = load_config(settings)
    out: dict = {}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    t0 = time.perf_counter()
    if step == "ingest":
        from warriorflow.stages.ingest import ingest_stage
        out["counts"] = run_as_writer(cfg, ingest_stage, RUN_ID).counts
    elif step == "dedup":
        from warriorflow.stages.dedup import dedup_stage
        out["counts"] = run_as_writer(cfg, dedup_stage, RUN_ID).counts
    elif step == "compress-select":
        from warriorflow.stages.compress import compress_stage
        out["counts"] = run_as_writer(cfg, compress_stage, RUN_ID).counts
    elif step == "plan":
        from warriorflow.stages.plan import plan_stage
        report = run_as_writer(cfg, plan_stage, RUN_ID)
        out["counts"] = report.counts
    elif step == "rate+gold":
        from warriorflow.stages.gold import gold_stage
        from warriorflow.stages.rate import rate_stage
        rate = run_as_writer(cfg, rate_stage, RUN_ID)
        out["rate_seconds"] = time.perf_counter() - t0
        gold = run_as_writer(cfg, gold_stage, RUN_ID)
        out["gold_seconds"] = time.perf_counter() - t0 - out["rate_seconds"]
        out["counts"] = {**rate.counts, **{f"gold_{k}": v for k, v in gold.counts.items()}}
    elif step == "snapshot":
        from warriorflow.store.objects import open_objects
        from warriorflow.store.rating_store import RatingStore
        from warriorflow.store.snapshots import create_snapshot
        with RatingStore(cfg.duckdb_path) as store:
            info = create_snapshot(cfg, store, open_objects(cfg))
        out["counts"] = {"examples": info.n_examples, "battles": info.n_battles, "preferences": info.n_preferences,
                         "responses": info.n_responses}
    else:
        raise SystemExit(f"unknown step {step}")
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime - cpu0  # all threads (DuckDB, BLAS) of the step
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MiB. Not the parent's ``wait4`` rusage: a forked child's
    ru_maxrss counts the parent's memory at the fork, before the exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(step: str, settings: Path) -> dict:
    """Run ``step`` in a child process of its own; its time and peak RSS, both measured in the child."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", step, "--settings", str(settings)],
                            stdout=subprocess.PIPE, env=env, text=True)
    out_text = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"step {step} failed (exit {proc.returncode})")
    result = json.loads(out_text.strip().splitlines()[-1])
    return {"seconds": round(result.pop("seconds"), 2), "peak_rss_mb": round(result.pop("peak_rss_mb"), 1),
            "wall_seconds": round(wall, 2), **{k: round(v, 2) if isinstance(v, float) else v
                                                for k, v in result.items()}}


def fresh_work(home: Path) -> None:
    work = home / "work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "objects" / "runs" / RUN_ID).mkdir(parents=True)
    shutil.copyfile(home / "base.duckdb", work / "warriorflow.duckdb")
    shutil.copytree(home / "mined", work / "objects" / "runs" / RUN_ID / "mine")


def report(files: list[Path]) -> str:
    """A Markdown table of result files (one column pair per size): seconds (CPU seconds) and peak RSS per step."""
    runs = sorted((json.loads(f.read_text()) for f in files), key=lambda r: r["instructions"])
    head = "| step | " + " | ".join(f"{r['instructions']:,} / {r['votes']:,}" for r in runs) + " |"
    lines = [head, "|---|" + "---|" * len(runs)]
    for step in STEPS:
        cells = []
        for r in runs:
            x = r["steps"].get(step)
            cpu = x.get("cpu_seconds", x["seconds"]) if x else 0
            cells.append("" if x is None else f"{x['seconds']:.1f} s ({cpu:.0f} cpu s), {x['peak_rss_mb']:.0f} MB")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instructions", type=int, default=10_000)
    ap.add_argument("--votes", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--pool", type=int, default=5000, help="the run's clean pool for compress-select")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-scale", help="built stores, per size")
    ap.add_argument("--rebuild", action="store_true", help="build the store again even if cached")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset, in order")
    ap.add_argument("--report", type=Path, nargs="+", help="print a Markdown table of these result files and stop")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--settings", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_step(args.child, args.settings)))
        return
    if args.report:
        print(report(args.report))
        return
    sys.path[:0] = [str(ROOT / "include"), str(ROOT)]
    s = shape(args.instructions, args.votes, args.pool)
    home = (args.cache / f"scale-{args.instructions}-{args.votes}-{args.dim}-{s['pool']}").resolve()
    marker = home / "built.json"
    build_seconds = None
    built = json.loads(marker.read_text()) if marker.exists() else {}
    if args.rebuild or built.get("shape") != s or built.get("version") != BUILD_VERSION:
        home.mkdir(parents=True, exist_ok=True)
        print(f"building {home} ...", flush=True)
        t0 = time.perf_counter()
        build(home, s, args.dim)
        build_seconds = round(time.perf_counter() - t0, 1)
        marker.write_text(json.dumps({"shape": s, "version": BUILD_VERSION, "build_seconds": build_seconds}))
    else:
        build_seconds = built.get("build_seconds")
    settings = write_config(home)
    fresh_work(home)
    steps = {}
    print(f"{'step':<16} {'seconds':>9} {'cpu s':>9} {'peak RSS MB':>12}", flush=True)
    for step in args.steps.split(","):
        steps[step] = measure(step, settings)
        print(f"{step:<16} {steps[step]['seconds']:>9.1f} {steps[step]['cpu_seconds']:>9.1f} "
              f"{steps[step]['peak_rss_mb']:>12.0f}", flush=True)
        result = {"steps": steps, "instructions": args.instructions, "votes": s["votes"], "dim": args.dim,
                  "shape": s, "build_seconds": build_seconds,
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "platform": platform.platform(), "load_average_after": os.getloadavg()}}
        if args.json:  # after every step: a failed step leaves the ones before it
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
