"""Data quality gates: Great Expectations (1.x) suites run on every batch at the instruction pipeline's
stage boundaries (mined, scored, selected); a failing batch is quarantined with its validation result.
See :mod:`warriorflow.quality.gates`."""
