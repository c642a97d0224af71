-- The snapshot's content, staged for reading a range at a time (store/snapshots.py create_snapshot); each table is
-- written in the order it is read, so a range query reads only its own row groups.
-- _wf_snap_gold: the gold instructions (those of the sft view: its joins, without its per-row lists). _wf_snap_scored: every scored response of them, with the
-- gold's rating version's scores. _wf_snap_battles: their completed battles in the recorded battle order (bo), with
-- _wf_snap_battle_votes: every stored vote of those battles. _wf_snap_sides: each such vote once per competitor,
-- with its role and opponent (the responses dataset's votes).
CREATE OR REPLACE TEMP TABLE _wf_snap_gold AS
SELECT DISTINCT g.instruction_id
FROM gold_selections g JOIN instructions i USING (instruction_id) JOIN responses r ON r.response_id = g.response_id
ORDER BY g.instruction_id;

CREATE OR REPLACE TEMP TABLE _wf_snap_scored AS
SELECT s.instruction_id, i.text AS instruction, s.response_id, s.expert, r.text AS response,
       s.final_score, s.elo_expectation, s.local_score, s.n_battles, s.rating_version,
       s.response_id = g.response_id AS is_gold
FROM response_scores s
JOIN gold_selections g ON g.instruction_id = s.instruction_id AND g.rating_version = s.rating_version
JOIN instructions i ON i.instruction_id = s.instruction_id
JOIN responses r ON r.response_id = s.response_id
WHERE s.instruction_id IN (SELECT instruction_id FROM _wf_snap_gold)
ORDER BY s.instruction_id, s.expert;

CREATE OR REPLACE TEMP TABLE _wf_snap_battles AS
SELECT (row_number() OVER (ORDER BY battle_order IS NULL, coalesce(battle_order, 0), battle_id) - 1)::BIGINT AS bo,
       battle_id, instruction_id, attacker, defender, battle_order
FROM battles
WHERE status = 'done' AND instruction_id IN (SELECT instruction_id FROM _wf_snap_gold)
ORDER BY bo;

CREATE OR REPLACE TEMP TABLE _wf_snap_battle_votes AS
SELECT b.bo, v.judge, v.shown_order, v.verdict
FROM votes v JOIN _wf_snap_battles b USING (battle_id)
ORDER BY b.bo, v.judge, v.shown_order;

CREATE OR REPLACE TEMP TABLE _wf_snap_sides AS
SELECT * FROM (
    SELECT b.instruction_id, b.attacker AS expert, v.battle_id, b.defender AS opponent, 'attacker' AS role,
           v.judge, v.shown_order, v.verdict, v.p_a, v.p_b, v.p_tie
    FROM votes v JOIN _wf_snap_battles b USING (battle_id)
    UNION ALL
    SELECT b.instruction_id, b.defender, v.battle_id, b.attacker, 'defender',
           v.judge, v.shown_order, v.verdict, v.p_a, v.p_b, v.p_tie
    FROM votes v JOIN _wf_snap_battles b USING (battle_id))
ORDER BY instruction_id, expert, battle_id, judge, shown_order;
