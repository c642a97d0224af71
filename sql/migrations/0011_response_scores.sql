-- Schema version 11: every response's final score, not only the gold one's (the snapshot's preferences and
-- responses datasets). The gold step writes one row per instruction and expert that fought on it, from the
-- numbers it selects gold with (method/rating.py response_scores): final_score = alpha * elo_expectation +
-- (1 - alpha) * local_score, each the mean over the response's battles on the instruction, for the rating
-- version (vote log) the gold step read. A rerun of the gold step replaces an instruction's rows.
CREATE TABLE response_scores (
    instruction_id  VARCHAR NOT NULL,
    expert          VARCHAR NOT NULL,
    response_id     VARCHAR NOT NULL,
    final_score     DOUBLE NOT NULL,         -- e
    elo_expectation DOUBLE NOT NULL,         -- mean Elo expected score against its opponents on the instruction
    local_score     DOUBLE NOT NULL,         -- mean share of the decisive (weighted) judge votes
    n_battles       INTEGER NOT NULL,
    alpha           DOUBLE NOT NULL,
    rating_version  VARCHAR NOT NULL,
    PRIMARY KEY (instruction_id, expert)
);
