-- One effective vote per judge and battle of the vote log (store/vote_log.py open_log), the rules of
-- method/votes.py judge_vote in SQL: a judge whose every vote on the battle carries probabilities (and the
-- probabilistic rule enabled) votes by its debiased preference, mean over its shown orders of
-- P'(attacker) - P'(defender), against the margin; any other judge by agreement (an invalid half: invalid; a
-- disagreeing pair: tie). A competitor's vote on its own battle never counts.
-- _wf_log_judges (judge, ea = exp(-beta/2), eb = exp(beta/2), k) holds each judge's debiasing factors (computed in
-- Python, as votes.debias does) and its place k among the judge names sorted as Python sorts them. A vote is kept
-- as (pos, k, jrank, code): jrank 0 for a judge's vote, 1 for the execution vote added after the judges; code 1
-- attacker, 2 defender, 3 tie, 4 invalid.
CREATE OR REPLACE TEMP TABLE _wf_log_votes AS
WITH cast_votes AS (
    SELECT b.pos, j.k, v.verdict,
           v.p_a IS NOT NULL AND v.p_b IS NOT NULL AND v.p_tie IS NOT NULL AS has_probs,
           greatest(v.p_a, $floor) * j.ea AS a,
           greatest(v.p_b, $floor) * j.eb AS b,
           v.p_tie AS t,
           v.shown_order
    FROM votes v
    JOIN _wf_log_battles b USING (battle_id)
    JOIN _wf_log_judges j USING (judge)
    WHERE v.judge NOT IN (b.attacker, b.defender)
), diffs AS (
    SELECT pos, k, verdict, has_probs,
           CASE shown_order WHEN 'attacker_first' THEN a / ((a + b) + t) - b / ((a + b) + t)
                            WHEN 'defender_first' THEN b / ((a + b) + t) - a / ((a + b) + t) END AS diff
    FROM cast_votes
), per_judge AS (
    SELECT pos, k,
           $probabilistic AND bool_and(has_probs) AS by_probs,
           sum(diff) / count(*) AS pref,
           bool_or(verdict = 'invalid') AS any_invalid,
           min(verdict) AS lo, max(verdict) AS hi
    FROM diffs
    GROUP BY pos, k
)
SELECT pos, k, 0::TINYINT AS jrank,
       CASE WHEN by_probs THEN (CASE WHEN pref > $margin THEN 1 WHEN pref < -$margin THEN 2 ELSE 3 END)
            WHEN any_invalid THEN 4
            WHEN lo = hi THEN (CASE lo WHEN 'attacker' THEN 1 WHEN 'defender' THEN 2 WHEN 'tie' THEN 3 ELSE 4 END)
            ELSE 3 END::TINYINT AS code
FROM per_judge;
