-- Schema version 12: each fought response's style counts (method/style_control.py style_features), computed once
-- by the rate step and kept, so that the style-controlled ratings read four numbers per response instead of
-- every response text on every run. `algorithm` is style_control.FEATURES_VERSION: rows of another version are
-- computed again.
CREATE TABLE response_style (
    response_id     VARCHAR PRIMARY KEY,
    algorithm       INTEGER NOT NULL,
    length          INTEGER NOT NULL,
    headers         INTEGER NOT NULL,
    lists           INTEGER NOT NULL,
    bold            INTEGER NOT NULL
);
