-- Schema version 8: execution evidence (method/execution.py). One row per battle and role: the response's
-- Python code run in the sandbox (an execute job) against the tests found in the question and in both
-- responses. The execution vote and the judges' summary are computed from these rows.
CREATE TABLE executions (
    battle_id           VARCHAR NOT NULL,
    role                VARCHAR NOT NULL,        -- attacker | defender
    response_id         VARCHAR NOT NULL,
    code_task           BOOLEAN NOT NULL,        -- the instruction asks for code (heuristic)
    has_code            BOOLEAN NOT NULL,
    status              VARCHAR NOT NULL,        -- ok | no_code | syntax_error | skipped | error | timeout | ...
    tests_total         INTEGER NOT NULL,        -- the battle's tests (the same for both roles)
    tests_passed        INTEGER NOT NULL,
    instruction_total   INTEGER NOT NULL,        -- ... of them found in the instruction (the spec)
    instruction_passed  INTEGER NOT NULL,
    attacker_total      INTEGER NOT NULL,        -- ... in the attacker's response
    attacker_passed     INTEGER NOT NULL,
    defender_total      INTEGER NOT NULL,        -- ... in the defender's response
    defender_passed     INTEGER NOT NULL,
    runs                INTEGER NOT NULL,        -- sandbox runs (0: not run)
    seconds             DOUBLE,
    details             JSON NOT NULL,           -- each test (id, origin, source, result), the stderr tail
    run_id              VARCHAR NOT NULL,
    created_at          TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (battle_id, role)
);
