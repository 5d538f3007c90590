-- One row per committed PostgreSQL load (target table, load id), written in the same transaction
-- as the rows it stands for (pipeline.systems.postgres.write_marker).
-- check: {}
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS ops.load_markers (
    target_table text NOT NULL,
    update_id    text NOT NULL,
    rows_loaded  bigint NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_table, update_id)
)
