-- Misuse that must not hurt: each is refused with a clear error, or handled
-- as documented; never a crash, never a silent loss.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections;
RESET client_min_messages;


CREATE TABLE model (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION model_apply(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO model VALUES (e.stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET n = model.n + 1
$$;
CREATE TABLE inline_model (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION inline_apply(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO inline_model VALUES (e.stream_id, 1)
    ON CONFLICT (stream_id) DO UPDATE SET n = inline_model.n + 1
$$;
SET client_min_messages = error;
SELECT projections.register('model', 'model_apply(projections.events)');
SELECT projections.register('inline_model', 'inline_apply(projections.events)', mode => 'inline');
RESET client_min_messages;
SELECT projections.append('s-1', 'E', '{}') > 0 AS appended;
SELECT projections.run('model');

-- the read-model table of an async projection is dropped: the projection
-- fails at the next event with the error, and nothing is lost
DROP TABLE model;
SELECT projections.append('s-1', 'E', '{}') > 0 AS appended;
SELECT projections.run('model');
SELECT name, state, position, lag, error_sqlstate, last_error FROM projections.status WHERE name = 'model';
CREATE TABLE model (stream_id text PRIMARY KEY, n integer NOT NULL);
SELECT projections.resume('model') \gset
SELECT projections.run('model');
SELECT * FROM model;

-- the read-model table of an inline projection is dropped: appends fail
-- (the event is not stored) until the table is back or the projection is
-- paused or switched to async
DROP TABLE inline_model;
SELECT projections.append('s-2', 'E', '{}');
SELECT count(*) AS s2_events FROM projections.read_stream('s-2');
CREATE TABLE inline_model (stream_id text PRIMARY KEY, n integer NOT NULL);
SELECT projections.append('s-2', 'E', '{}') > 0 AS appended;
SELECT * FROM inline_model;

-- the extension's own objects
SELECT try($$DROP TABLE projections.events$$);
SELECT try($$ALTER TABLE projections.events RENAME TO history$$);
SELECT try($$ALTER TABLE projections.events SET SCHEMA public$$);
SELECT try($$ALTER TABLE projections.projection RENAME TO catalog$$);
SELECT try($$TRUNCATE projections.events$$);
SELECT try($$TRUNCATE projections.projection$$);
SELECT try($$DELETE FROM projections.projection$$);
SELECT try($$UPDATE projections.projection SET checkpoint_position = 0$$);
SELECT try($$UPDATE projections.key_offset SET key_offset = 0$$);
SELECT try($$DELETE FROM projections.failed_event$$);
SELECT try($$DROP SCHEMA projections$$);
SELECT try($$DROP FUNCTION model_apply(projections.events)$$);
SELECT count(*) AS still_registered FROM projections.status;

-- DROP EXTENSION with projections registered: refused without CASCADE,
-- because the handlers take projections.events
DROP EXTENSION projections;
SELECT count(*) AS events_kept FROM projections.events;
-- with CASCADE it drops the events, the catalog and the handlers (the read
-- models stay): documented, and only ever on purpose
SET client_min_messages = warning;
DROP EXTENSION projections CASCADE;
RESET client_min_messages;
SELECT count(*) AS read_model_kept FROM model;
SELECT count(*) AS handlers_left FROM pg_proc WHERE proname IN ('model_apply', 'inline_apply');
CREATE EXTENSION projections;
DROP TABLE model, inline_model;
