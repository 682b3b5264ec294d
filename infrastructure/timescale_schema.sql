-- ultrathink_experiments: market data and ML experiment tracking.
--
-- Applied by infrastructure/scripts/pg-init.sh as the superuser, connected to
-- ultrathink_experiments, in one transaction (psql -1, ON_ERROR_STOP).  Idempotent: every
-- statement checks before it creates, so applying it again changes nothing (apart from
-- creating partitions for days that have come within the premake window).
--
-- Time-series tables are TimescaleDB hypertables (with compression and retention policies when
-- the TimescaleDB license allows them) when the extension is both available and preloaded;
-- otherwise native range partitioning by day: partitions premade ahead, a DEFAULT partition
-- for anything outside them, and a BRIN index on the time column.  Detect, don't fail.
-- A table keeps the backend it was created with (ut.timeseries records it).
--
-- Objects are owned by role app (the database owner); only CREATE EXTENSION runs as superuser.

SET client_min_messages = warning;
SET lock_timeout = '10s';

-- ------------------------------------------------------------------ TimescaleDB detection
-- CREATE EXTENSION timescaledb needs the library in shared_preload_libraries; when it is only
-- installed but not preloaded we fall back to native partitioning rather than fail.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') ~ '(^|[\s,])timescaledb($|[\s,])' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
END
$$;

SET ROLE app;

CREATE SCHEMA IF NOT EXISTS ut;
CREATE SCHEMA IF NOT EXISTS market;
CREATE SCHEMA IF NOT EXISTS ml;

-- ------------------------------------------------------------------ bookkeeping
CREATE TABLE IF NOT EXISTS ut.schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    note       text NOT NULL
);

-- One row per time-series table: how it is stored and its lifecycle settings.
CREATE TABLE IF NOT EXISTS ut.timeseries (
    table_name      text PRIMARY KEY,          -- schema-qualified, e.g. market.ticks
    time_column     text NOT NULL,
    backend         text NOT NULL CHECK (backend IN ('timescaledb', 'native')),
    premake_days    integer NOT NULL DEFAULT 7 CHECK (premake_days BETWEEN 1 AND 366),
    compress_after  interval,                  -- TimescaleDB only
    retention       interval,                  -- NULL = keep forever
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION ut.have_timescaledb() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;

-- Native backend: makes sure the daily partition [day, day + 1) exists.  Rows that already
-- landed in the DEFAULT partition for that day are moved into the new partition (a plain
-- CREATE ... PARTITION OF would fail on them).  Returns true when it created the partition.
CREATE OR REPLACE FUNCTION ut.ensure_day_partition(p_table text, p_day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r       record;
    v_lo    timestamptz := (p_day::timestamp AT TIME ZONE 'UTC');
    v_hi    timestamptz := ((p_day + 1)::timestamp AT TIME ZONE 'UTC');
    v_part  text;
    v_def   text;
    v_moved bigint;
BEGIN
    SELECT * INTO STRICT r FROM ut.timeseries WHERE table_name = p_table AND backend = 'native';
    v_part := p_table || '_p' || to_char(p_day, 'YYYYMMDD');
    v_def := p_table || '_default';
    IF to_regclass(v_part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s WHERE %I >= $1 AND %I < $2', v_def, r.time_column,
                   r.time_column) INTO v_moved USING v_lo, v_hi;
    IF v_moved = 0 THEN
        EXECUTE format('CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', v_part,
                       p_table, v_lo, v_hi);
    ELSE
        EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       v_part, p_table);
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= $1 AND %I < $2 RETURNING *) '
                       'INSERT INTO %s SELECT * FROM moved', v_def, r.time_column,
                       r.time_column, v_part) USING v_lo, v_hi;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                       p_table, v_part, v_lo, v_hi);
        RAISE NOTICE '%: moved % rows from % into new partition %', p_table, v_moved, v_def,
                     v_part;
    END IF;
    RETURN true;
END
$$;

-- Native backend: premakes partitions from yesterday to today + premake_days and drops the
-- daily partitions that lie entirely before now() - retention.  Call it at least daily (pg-init
-- runs it; so can `infractl` or cron).  Returns a summary per table.
CREATE OR REPLACE FUNCTION ut.maintain_partitions()
RETURNS TABLE (table_name text, created integer, dropped integer)
LANGUAGE plpgsql AS $$
DECLARE
    r       record;
    p       record;
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_day   date;
BEGIN
    FOR r IN SELECT * FROM ut.timeseries t WHERE t.backend = 'native' ORDER BY t.table_name LOOP
        table_name := r.table_name;
        created := 0;
        dropped := 0;
        FOR v_day IN SELECT d::date FROM generate_series(v_today - 1, v_today + r.premake_days,
                                                         interval '1 day') AS d LOOP
            IF ut.ensure_day_partition(r.table_name, v_day) THEN
                created := created + 1;
            END IF;
        END LOOP;
        IF r.retention IS NOT NULL THEN
            FOR p IN
                SELECT c.oid::regclass AS part
                FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = r.table_name::regclass
                  AND c.relname ~ '_p[0-9]{8}$'
                  AND to_date(substring(c.relname FROM '([0-9]{8})$'), 'YYYYMMDD') + 1
                      <= ((now() - r.retention) AT TIME ZONE 'UTC')::date
            LOOP
                EXECUTE format('DROP TABLE %s', p.part);
                dropped := dropped + 1;
            END LOOP;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Creates a time-series table once, with the backend available at that moment.
--   p_columns     column and constraint list, as inside CREATE TABLE ( ... )
--   p_segment_by  TimescaleDB compression segment column (e.g. symbol), NULL for none
CREATE OR REPLACE FUNCTION ut.create_timeseries(p_table text, p_columns text,
                                                p_time_column text, p_segment_by text,
                                                p_compress_after interval,
                                                p_retention interval,
                                                p_premake_days integer DEFAULT 7)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_backend text;
    v_rel     text := split_part(p_table, '.', 2);
BEGIN
    SELECT backend INTO v_backend FROM ut.timeseries WHERE table_name = p_table;
    IF FOUND THEN
        RETURN v_backend;
    END IF;
    IF to_regclass(p_table) IS NOT NULL THEN
        RAISE EXCEPTION '% exists but is not registered in ut.timeseries', p_table;
    END IF;

    IF ut.have_timescaledb() THEN
        v_backend := 'timescaledb';
        EXECUTE format('CREATE TABLE %s (%s)', p_table, p_columns);
        EXECUTE format('SELECT create_hypertable(%L, %L, chunk_time_interval => interval %L)',
                       p_table, p_time_column, '1 day');
        -- Compression and policies are Community-license (TSL) features.
        IF coalesce(current_setting('timescaledb.license', true), '') = 'timescale' THEN
            IF p_compress_after IS NOT NULL THEN
                IF p_segment_by IS NOT NULL THEN
                    EXECUTE format('ALTER TABLE %s SET (timescaledb.compress, '
                                   'timescaledb.compress_segmentby = %L, '
                                   'timescaledb.compress_orderby = %L)',
                                   p_table, p_segment_by, p_time_column || ' DESC');
                ELSE
                    EXECUTE format('ALTER TABLE %s SET (timescaledb.compress, '
                                   'timescaledb.compress_orderby = %L)',
                                   p_table, p_time_column || ' DESC');
                END IF;
                EXECUTE format('SELECT add_compression_policy(%L, compress_after => %L::interval, '
                               'if_not_exists => true)', p_table, p_compress_after);
            END IF;
            IF p_retention IS NOT NULL THEN
                EXECUTE format('SELECT add_retention_policy(%L, drop_after => %L::interval, '
                               'if_not_exists => true)', p_table, p_retention);
            END IF;
        ELSE
            RAISE NOTICE '%: TimescaleDB license is not "timescale": no compression/retention '
                         'policies', p_table;
        END IF;
    ELSE
        v_backend := 'native';
        EXECUTE format('CREATE TABLE %s (%s) PARTITION BY RANGE (%I)', p_table, p_columns,
                       p_time_column);
        EXECUTE format('CREATE TABLE %s PARTITION OF %s DEFAULT', p_table || '_default', p_table);
        EXECUTE format('CREATE INDEX %I ON %s USING brin (%I)', v_rel || '_' || p_time_column ||
                       '_brin', p_table, p_time_column);
    END IF;

    INSERT INTO ut.timeseries (table_name, time_column, backend, premake_days, compress_after,
                               retention)
    VALUES (p_table, p_time_column, v_backend, p_premake_days, p_compress_after, p_retention);
    RETURN v_backend;
END
$$;

-- ------------------------------------------------------------------ market data
-- Trades/ticks as they arrive; no primary key (exchanges repeat and reorder), deduplicate
-- downstream by (symbol, exchange, trade_id) when needed.
SELECT ut.create_timeseries('market.ticks', $cols$
    ts        timestamptz      NOT NULL,
    symbol    text             NOT NULL,
    price     double precision NOT NULL CHECK (price >= 0),
    qty       double precision NOT NULL CHECK (qty >= 0),
    side      char(1)          CHECK (side IN ('B', 'S')),
    exchange  text,
    trade_id  bigint,
    recv_ts   timestamptz      NOT NULL DEFAULT now()
$cols$, 'ts', 'symbol', interval '7 days', interval '90 days');
CREATE INDEX IF NOT EXISTS ticks_symbol_ts_idx ON market.ticks (symbol, ts DESC);

-- OHLCV bars at a fixed set of resolutions; one row per (symbol, resolution, bucket start).
SELECT ut.create_timeseries('market.bars', $cols$
    ts          timestamptz      NOT NULL,
    symbol      text             NOT NULL,
    resolution  text             NOT NULL CHECK (resolution IN ('1s', '1m', '5m', '15m', '1h', '1d')),
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    volume      double precision NOT NULL DEFAULT 0,
    trades      integer          NOT NULL DEFAULT 0,
    vwap        double precision,
    PRIMARY KEY (symbol, resolution, ts),
    CHECK (low <= high)
$cols$, 'ts', 'symbol', interval '30 days', NULL);

-- ------------------------------------------------------------------ ML experiments
CREATE TABLE IF NOT EXISTS ml.experiments (
    experiment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    description   text NOT NULL DEFAULT '',
    owner         text,
    tags          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    archived_at   timestamptz
);

CREATE TABLE IF NOT EXISTS ml.runs (
    run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment_id bigint NOT NULL REFERENCES ml.experiments ON DELETE CASCADE,
    name          text,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,  -- hyperparameters, dataset ranges
    git_commit    text,
    host          text,
    gpus          text[],                              -- e.g. {GPU-uuid, ...}
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    ended_at      timestamptz,
    error         text,
    CHECK (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX IF NOT EXISTS runs_experiment_idx ON ml.runs (experiment_id, created_at DESC);
CREATE INDEX IF NOT EXISTS runs_active_idx ON ml.runs (status) WHERE status IN ('queued', 'running');

-- Training/eval metrics as a time series: (run, metric key, step) -> value.
SELECT ut.create_timeseries('ml.run_metrics', $cols$
    ts      timestamptz      NOT NULL DEFAULT now(),
    run_id  bigint           NOT NULL REFERENCES ml.runs ON DELETE CASCADE,
    key     text             NOT NULL,
    step    bigint           NOT NULL DEFAULT 0,
    value   double precision NOT NULL
$cols$, 'ts', 'run_id', interval '30 days', NULL);
CREATE INDEX IF NOT EXISTS run_metrics_run_key_idx ON ml.run_metrics (run_id, key, step);

-- ------------------------------------------------------------------ model registry and rollouts
CREATE TABLE IF NOT EXISTS ml.models (
    model_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ml.model_versions (
    model_version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id         bigint NOT NULL REFERENCES ml.models ON DELETE CASCADE,
    version          integer NOT NULL CHECK (version > 0),
    run_id           bigint REFERENCES ml.runs ON DELETE SET NULL,   -- the run that trained it
    artifact_uri     text NOT NULL,
    sha256           text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    metrics          jsonb NOT NULL DEFAULT '{}'::jsonb,             -- offline eval summary
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, version)
);

-- A rollout moves one model version through the stages of rolloutd's flag model
-- (off -> shadow -> canary -> partial -> full, kill switch wins) behind a feature flag.
CREATE TABLE IF NOT EXISTS ml.rollouts (
    rollout_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_version_id bigint NOT NULL REFERENCES ml.model_versions ON DELETE RESTRICT,
    flag_key         text NOT NULL,
    stage            text NOT NULL DEFAULT 'off'
                     CHECK (stage IN ('off', 'shadow', 'canary', 'partial', 'full')),
    percent          numeric(8, 3) NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    killed           boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'completed', 'rolled_back')),
    started_at       timestamptz NOT NULL DEFAULT now(),
    ended_at         timestamptz
);
-- at most one active rollout per flag
CREATE UNIQUE INDEX IF NOT EXISTS rollouts_one_active_per_flag
    ON ml.rollouts (flag_key) WHERE status = 'active';

-- Stage changes, for the audit trail and rollout reports.
CREATE TABLE IF NOT EXISTS ml.rollout_events (
    rollout_id bigint NOT NULL REFERENCES ml.rollouts ON DELETE CASCADE,
    ts         timestamptz NOT NULL DEFAULT now(),
    stage      text NOT NULL,
    percent    numeric(8, 3) NOT NULL,
    actor      text,
    reason     text,
    PRIMARY KEY (rollout_id, ts)
);

-- ------------------------------------------------------------------ maintenance + version
SELECT * FROM ut.maintain_partitions();

INSERT INTO ut.schema_version (version, note)
VALUES (1, 'market ticks/bars, ml experiments/runs/run_metrics, model registry and rollouts')
ON CONFLICT (version) DO NOTHING;

RESET ROLE;
