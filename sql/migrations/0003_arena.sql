-- Schema version 3: the arena. Raw and competitor verdicts per vote, and the SFT view with lineage.

ALTER TABLE votes ADD COLUMN raw_verdict VARCHAR;       -- A | B | tie | invalid, as the judge saw positions
ALTER TABLE battles ADD COLUMN judges VARCHAR[];        -- the eligible panel at planning time
ALTER TABLE battles ADD COLUMN judge_calls INTEGER;     -- calls made (sequential voting may save some)
ALTER TABLE battles ADD COLUMN judge_calls_saved INTEGER;

-- Gold responses as SFT examples, each with its lineage: instruction -> battles -> votes -> response.
CREATE VIEW sft AS
SELECT
    g.instruction_id,
    i.text                      AS instruction,
    r.text                      AS response,
    g.response_id,
    g.expert                    AS response_expert,
    i.expert                    AS miner,
    g.final_score,
    g.rating_version,
    i.difficulty,
    (SELECT list(b.battle_id ORDER BY b.battle_order) FROM battles b
      WHERE b.instruction_id = g.instruction_id AND b.status = 'done') AS battle_ids,
    (SELECT list({'battle_id': v.battle_id, 'judge': v.judge, 'shown_order': v.shown_order,
                  'verdict': v.verdict} ORDER BY v.battle_id, v.judge, v.shown_order)
       FROM votes v JOIN battles b USING (battle_id)
      WHERE b.instruction_id = g.instruction_id) AS votes,
    g.selected_at
FROM gold_selections g
JOIN instructions i USING (instruction_id)
JOIN responses r ON r.response_id = g.response_id;
