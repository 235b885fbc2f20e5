-- Least privilege: handlers run as the role that registered them, in a
-- security-restricted operation; only the owner (or a superuser) changes a
-- projection; only the extension writes the catalog.
-- each test file starts from an empty event store
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections;
SET client_min_messages = error;   -- no "worker is off" warnings here


CREATE ROLE regress_alice;
CREATE ROLE regress_bob;
CREATE ROLE regress_alice_team;
GRANT regress_alice TO regress_alice_team;
GRANT USAGE ON SCHEMA projections TO regress_alice, regress_bob, regress_alice_team;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA projections TO regress_alice, regress_bob, regress_alice_team;
GRANT SELECT ON projections.status TO regress_alice, regress_bob;

-- a table nobody but the superuser may read
CREATE TABLE secret (x integer);
INSERT INTO secret VALUES (42);

-- alice: a schema of her own, her read model, three handlers
CREATE SCHEMA alice AUTHORIZATION regress_alice;
SET ROLE regress_alice;
SET search_path = alice, public;
CREATE TABLE seen (pos bigint, who text, secret integer);
CREATE FUNCTION record(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- unqualified on purpose: resolved with the search_path at registration
    INSERT INTO seen VALUES (e.global_position, current_user, NULL);
END $$;
CREATE FUNCTION peek(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alice.seen SELECT e.global_position, current_user, x FROM public.secret;
END $$;
CREATE FUNCTION escalate(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RESET ROLE;
    INSERT INTO alice.seen VALUES (e.global_position, current_user, NULL);
END $$;
CREATE FUNCTION clear() RETURNS void LANGUAGE sql AS $$ DELETE FROM alice.seen $$;
SELECT projections.register('alice_record', 'record(projections.events)', reset => 'clear()');
SELECT projections.register('alice_peek', 'peek(projections.events)');
SELECT projections.register('alice_escalate', 'escalate(projections.events)');
RESET search_path;
RESET ROLE;

SELECT projections.append('account-1', 'Opened', '{}') > 0 AS appended;

-- the superuser applies alice's projection: the handler runs as alice
SELECT projections.run('alice_record');
SELECT pos > 0 AS has_pos, who FROM alice.seen;
-- as alice, the handler cannot read what alice cannot read: the error pauses it
SELECT projections.run('alice_peek');
-- nor leave the restricted operation to become the superuser again
SELECT projections.run('alice_escalate');
SELECT name, state, error_sqlstate, last_error FROM projections.status
WHERE name LIKE 'alice%' ORDER BY name;
SELECT count(*) AS leaked FROM alice.seen WHERE secret IS NOT NULL OR who <> 'regress_alice';

-- bob cannot change, run or remove alice's projections
SET ROLE regress_bob;
SELECT try($$SELECT projections.pause('alice_record')$$);
SELECT try($$SELECT projections.resume('alice_peek')$$);
SELECT try($$SELECT projections.rebuild('alice_record')$$);
SELECT try($$SELECT projections.unregister('alice_record')$$);
SELECT try($$SELECT projections.run('alice_record')$$);
SELECT try($$SELECT projections.set_mode('alice_record', 'inline')$$);
-- nor see them, nor write the catalog
SELECT count(*) AS visible_to_bob FROM projections.status;
SELECT try($$SELECT count(*) FROM projections.projection$$);
SELECT try($$UPDATE projections.projection SET state = 'paused'$$);
SELECT try($$INSERT INTO projections.failed_event VALUES ('x', 1, 's', 1, 't', 'm', 's')$$);
-- nor register a handler he may not execute
SELECT try($$SELECT projections.register('bob_steals', 'alice.record(projections.events)')$$);
RESET ROLE;

-- alice (and members of her role) manage their own
SET ROLE regress_alice;
SELECT name, state FROM projections.status ORDER BY name;
SELECT projections.pause('alice_record');
SELECT projections.append('account-1', 'Credited', '{}') > 0 AS appended;
SELECT projections.resume('alice_record');
SELECT projections.run('alice_record');
RESET ROLE;
SET ROLE regress_alice_team;
SELECT projections.rebuild('alice_record');
SELECT projections.run('alice_record');
SELECT count(*) AS rebuilt_rows, bool_and(who = 'regress_alice') AS all_as_alice FROM alice.seen;
SELECT projections.unregister('alice_escalate');
RESET ROLE;

-- the search_path of the registration holds, whatever the caller's
SET search_path = public;
SELECT projections.append('account-2', 'Opened', '{}') > 0 AS appended;
SELECT projections.run('alice_record');
SELECT count(*) AS rows FROM alice.seen;
RESET search_path;

-- an appender needs no privilege on the schema of another owner's inline
-- handler: the handler runs as its owner
SET ROLE regress_alice;
SELECT projections.set_mode('alice_record', 'inline');
RESET ROLE;
SET ROLE regress_bob;
SELECT has_schema_privilege('alice', 'USAGE') AS bob_may_use_alice;
SELECT projections.append('account-3', 'Opened', '{}') > 0 AS bob_appended;
RESET ROLE;
SELECT count(*) AS applied_inline FROM alice.seen s JOIN projections.events e
    ON e.global_position = s.pos WHERE e.stream_id = 'account-3';

-- the key offset's repair locks out every append: only the events table's
-- owner may ask for it, EXECUTE or not
SET ROLE regress_bob;
SELECT try($$SELECT projections.repair_key_offset()$$);
RESET ROLE;

-- superusers may change anybody's projections
SELECT projections.unregister('alice_peek');
SELECT projections.unregister('alice_record');
SELECT count(*) AS left_over FROM projections.projection;

DROP SCHEMA alice CASCADE;
DROP TABLE secret;
REVOKE ALL ON SCHEMA projections FROM regress_alice, regress_bob, regress_alice_team;
DROP OWNED BY regress_alice, regress_bob, regress_alice_team;
DROP ROLE regress_alice_team;
DROP ROLE regress_alice;
DROP ROLE regress_bob;
