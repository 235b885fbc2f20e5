/* projections--0.1.0--0.2.0.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION projections UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION projections.stream_version(stream_id text)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s.version FROM projections.streams s WHERE s.stream_id = $1), 0)
$$;
COMMENT ON FUNCTION projections.stream_version(text) IS
'The version a stream is at (0 if it has no events): what expected_version is compared with.';
REVOKE ALL ON FUNCTION projections.stream_version(text) FROM PUBLIC;
