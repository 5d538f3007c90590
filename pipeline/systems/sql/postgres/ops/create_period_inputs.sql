-- What each daily or weekly output was computed from (pipeline.core.periods): one row per flow,
-- output and period, with the inputs' watermarks (files loaded, rows and latest time per source)
-- and their digest. An output is complete while its digest equals the one of the sources now;
-- `previous` keeps the inputs of the computation before (the summary says what changed).
-- check: {}
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS ops.period_inputs (
    flow        text NOT NULL,
    output      text NOT NULL,
    period      text NOT NULL,
    inputs      jsonb NOT NULL,
    digest      text NOT NULL,
    previous    jsonb,
    force_token text NOT NULL DEFAULT '',
    rows_out    bigint NOT NULL DEFAULT 0,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow, output, period)
)
