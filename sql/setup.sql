-- Helpers for the other regression tests, which run after this one.

-- run a statement; show 'ok', or its error as SQLSTATE and message, so that
-- every error code is checked
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT try('SELECT 1/0'), try('SELECT 1');
