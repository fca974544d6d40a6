-- Tables of the three example scenarios (generator/examples/scenarios.yaml). Plain SQL, run once
-- before `sqlambda install`, because the spec's triggers attach to tables that must exist.
-- The demo and tests/e2e run this very file; copy and adapt it for your own tables.

-- CloudWatch metrics: every INSERT sends its rows, in batches, to the cloudwatch_metrics Lambda
-- (trigger readings_to_cloudwatch: immediate, synchronous, one call per 500 rows).
CREATE TABLE IF NOT EXISTS public.temperature_readings (
    id            bigserial PRIMARY KEY,
    sensor        text NOT NULL DEFAULT 'demo',
    reading_time  timestamptz NOT NULL,
    reading_value double precision NOT NULL
);

-- Firehose to Redshift: every change is queued in the outbox (trigger orders_to_warehouse) and
-- delivered after commit by `sqlambda drain` to the firehose_to_redshift Lambda.
CREATE TABLE IF NOT EXISTS public.orders (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status      text NOT NULL,
    total       numeric(12,2) NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
