-- One effective vote per judge and battle of the vote log (store/vote_log.py open_log), the rules of
-- method/votes.py judge_vote in SQL: a judge whose every vote on the battle carries probabilities (and the
-- probabilistic rule enabled) votes by its debiased preference, mean over its shown orders of
-- P'(attacker) - P'(defender), against the margin; any other judge by agreement (an invalid half: invalid; a
-- disagreeing pair: tie). A competitor's vote on its own battle never counts.
-- _wf_log_judges (judge, ea = exp(-beta/2), eb = exp(beta/2), w, in_weights) holds each judge's debiasing
-- factors (computed in Python, as votes.debias does), its weight and the weight's JSON text, its place k among
-- the judges' names sorted as Python sorts them and its name as JSON (q). jrank orders a battle's votes as the
-- BattleVotes mapping holds them: judges by name (jrank 0), then an added execution vote (jrank 1).
CREATE OR REPLACE TEMP TABLE _wf_log_votes AS
WITH cast_votes AS (
    SELECT b.pos, v.judge, v.verdict,
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
    SELECT pos, judge, verdict, has_probs,
           CASE shown_order WHEN 'attacker_first' THEN a / ((a + b) + t) - b / ((a + b) + t)
                            WHEN 'defender_first' THEN b / ((a + b) + t) - a / ((a + b) + t) END AS diff
    FROM cast_votes
), per_judge AS (
    SELECT pos, judge,
           $probabilistic AND bool_and(has_probs) AS by_probs,
           sum(diff) / count(*) AS pref,
           bool_or(verdict = 'invalid') AS any_invalid,
           min(verdict) AS lo, max(verdict) AS hi
    FROM diffs
    GROUP BY pos, judge
)
SELECT p.pos, p.judge, 0 AS jrank,
       CASE WHEN by_probs THEN (CASE WHEN pref > $margin THEN 'attacker' WHEN pref < -$margin THEN 'defender'
                                     ELSE 'tie' END)
            WHEN any_invalid THEN 'invalid'
            WHEN lo = hi THEN lo
            ELSE 'tie' END AS verdict,
       j.w, j.in_weights, j.w_text, j.k, j.q
FROM per_judge p JOIN _wf_log_judges j USING (judge);
