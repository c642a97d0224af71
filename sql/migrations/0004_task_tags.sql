-- Schema version 4: the task category of each instruction, chosen by one judge from a fixed set
-- (tagging.categories) with constrained output. One row per instruction: re-running the tagging stage
-- tags only instructions without a row. An answer outside the set is kept as invalid (category NULL)
-- with its raw text, never guessed. The valid category is also copied to instructions.task_category.
CREATE TABLE task_tags (
    instruction_id  VARCHAR PRIMARY KEY,
    category        VARCHAR,                 -- one of tagging.categories; NULL when invalid
    valid           BOOLEAN NOT NULL,
    judge           VARCHAR NOT NULL,        -- the expert that tagged it (never its miner or the miner's weights)
    raw_text        VARCHAR,                 -- the judge's output, verbatim
    categories      VARCHAR[] NOT NULL,      -- the category set the judge was offered
    prompt_sha256   VARCHAR NOT NULL,        -- hash of the rendered prompt template file
    run_id          VARCHAR NOT NULL,
    tagged_at       TIMESTAMP NOT NULL DEFAULT current_timestamp
);
