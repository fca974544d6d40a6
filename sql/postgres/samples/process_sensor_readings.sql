-- Reading a Kinesis stream from SQL, resuming where the last run stopped: the PL/pgSQL loop of
-- the classic processSensorReadings sample, over the typed set-returning wrapper kinesis_read()
-- that `sqlambda install` creates from generator/examples/scenarios.yaml.
--
--   CALL process_sensor_readings('sensor-readings');        -- up to 10 batches of up to 100 records
--   SELECT * FROM kinesis_checkpoint;                       -- where the next run resumes
--
-- Each batch and its checkpoint commit together, so a run that fails (the Lambda errors, the
-- session dies) resumes after the last committed batch: a record is never skipped, and it is
-- never stored twice (kinesis_readings' primary key is the record's sequence number). Two runs on
-- the same stream wait for each other (advisory lock per stream). CALL it outside an explicit
-- transaction block, or the COMMITs inside are refused.

CREATE TABLE IF NOT EXISTS public.kinesis_checkpoint (
    stream          text PRIMARY KEY,
    sequence_number text NOT NULL,       -- the last record stored; the next read starts AFTER it
    records_read    bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.kinesis_readings (
    sequence_number text PRIMARY KEY,
    stream          text NOT NULL,
    partition_key   text,
    arrived_at      timestamptz,
    sensor          text,
    reading_time    timestamptz,
    reading_value   double precision,
    data            jsonb NOT NULL       -- the record as sent (decoded JSON)
);

CREATE OR REPLACE PROCEDURE public.process_sensor_readings(p_stream text, max_batches integer DEFAULT 10)
LANGUAGE plpgsql
AS $$
DECLARE
    last_seq text;
    n        integer;
    r        record;
BEGIN
    FOR batch IN 1 .. max_batches LOOP
        PERFORM pg_advisory_xact_lock(hashtext('process_sensor_readings'), hashtext(p_stream));
        SELECT sequence_number INTO last_seq FROM public.kinesis_checkpoint WHERE stream = p_stream;
        n := 0;
        -- NULL last_seq: the first run reads from the oldest record (TRIM_HORIZON)
        FOR r IN SELECT * FROM kinesis_read(p_stream, last_seq) LOOP
            INSERT INTO public.kinesis_readings
                (sequence_number, stream, partition_key, arrived_at, sensor, reading_time, reading_value, data)
            VALUES (r.sequence_number, p_stream, r.partition_key, r.arrived_at,
                    r.data ->> 'sensor', (r.data ->> 'reading_time')::timestamptz,
                    (r.data ->> 'reading_value')::double precision, r.data);
            last_seq := r.sequence_number;
            n := n + 1;
        END LOOP;
        EXIT WHEN n = 0;   -- caught up
        INSERT INTO public.kinesis_checkpoint AS c (stream, sequence_number, records_read)
        VALUES (p_stream, last_seq, n)
        ON CONFLICT (stream) DO UPDATE
            SET sequence_number = EXCLUDED.sequence_number,
                records_read    = c.records_read + EXCLUDED.records_read,
                updated_at      = now();
        COMMIT;
    END LOOP;
END
$$;
