/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The catalog of projections: reading its rows, locking a projection
 *	  for applying, and every write to projections.projection and
 *	  projections.failed_event.
 *
 * Nobody but the extension writes the catalog, and this file is where the
 * extension does: each function below runs one or two of the statements
 * declared here, as the extension's owner (registry.c).  A BEFORE UPDATE,
 * DELETE and TRUNCATE trigger (projections_catalog_guard) refuses every
 * other write, even a superuser's by hand, unless projections.maintenance
 * is on.
 *
 * Rows are read with a snapshot that sees every committed change, into the
 * caller's memory context; each function connects to SPI itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "settings.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "catalog.h"
#include "compat.h"
#include "registry.h"

/* advisory lock classes (locktag_field4) of an applier */
#define PROJ_LOCK_PROJECTION	0x5050
#define PROJ_LOCK_BUILD			0x5051

static const char *const state_names[] = {
	[PROJ_STATE_ACTIVE] = "active",
	[PROJ_STATE_PAUSED] = "paused",
	[PROJ_STATE_FAILED] = "failed",
};

const char *
ProjStateName(ProjState state)
{
	return state_names[state];
}

static ProjState
StateFromName(const char *name)
{
	int			i;

	for (i = 0; i < (int) lengthof(state_names); i++)
		if (strcmp(state_names[i], name) == 0)
			return (ProjState) i;
	elog(ERROR, "unknown projection state \"%s\"", name);
	return PROJ_STATE_FAILED;	/* keep compiler quiet */
}

/* the columns every read of a row returns, in this order */
#define DEF_COLUMNS \
	"p.name, p.handler, p.reset, p.event_types, p.mode, p.on_error, p.batch," \
	" p.owner::oid, p.search_path, p.state, p.rebuilding, p.inline_active," \
	" p.checkpoint_key, p.checkpoint_position, p.skip_position, p.position," \
	" p.tables::oid[], p.build_schema, p.build_key, p.build_checkpoint_position," \
	" p.build_position, p.build_analyzed"

enum
{
	COL_NAME = 1, COL_HANDLER, COL_RESET, COL_EVENT_TYPES, COL_MODE,
	COL_ON_ERROR, COL_BATCH, COL_OWNER, COL_SEARCH_PATH, COL_STATE,
	COL_REBUILDING, COL_INLINE_ACTIVE, COL_CHECKPOINT_KEY,
	COL_CHECKPOINT_POSITION, COL_SKIP_POSITION, COL_POSITION, COL_TABLES,
	COL_BUILD_SCHEMA, COL_BUILD_KEY, COL_BUILD_CHECKPOINT_POSITION,
	COL_BUILD_POSITION, COL_BUILD_ANALYZED
};

static ProjStatement load_stmt = {
	"SELECT " DEF_COLUMNS " FROM projections.projection p WHERE p.name = $1",
	1, {TEXTOID}
};

static ProjStatement list_runnable_stmt = {
	"SELECT " DEF_COLUMNS " FROM projections.projection p"
	" WHERE (p.state = 'active' AND NOT p.inline_active)"
	" OR p.build_schema IS NOT NULL ORDER BY p.name", 0
};

static ProjStatement list_inline_stmt = {
	"SELECT " DEF_COLUMNS " FROM projections.projection p"
	" WHERE p.inline_active AND p.state = 'active' ORDER BY p.name", 0
};

/*
 * (for appends between installing a new library and ALTER EXTENSION
 * UPDATE: the columns every version has, the others as their defaults)
 */
static ProjStatement list_inline_compat_stmt = {
	"SELECT p.name, p.handler, p.reset, p.event_types, p.mode, p.on_error, false,"
	" p.owner::oid, p.search_path, p.state, p.rebuilding, p.inline_active,"
	" p.checkpoint_key, p.checkpoint_position, p.skip_position, p.position,"
	" NULL::oid[], NULL::text, NULL::int8, NULL::int8, NULL::int8, false"
	" FROM projections.projection p"
	" WHERE p.inline_active AND p.state = 'active' ORDER BY p.name", 0
};

static ProjStatement owned_by_stmt = {
	"SELECT p.name FROM projections.projection p WHERE p.owner::oid = $1"
	" ORDER BY p.name", 1, {OIDOID}
};

static ProjStatement insert_stmt = {
	"INSERT INTO projections.projection (name, handler, reset, event_types,"
	" mode, on_error, batch, owner, search_path, tables)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8::regrole, $9, $10::regclass[])"
	" ON CONFLICT (name) DO NOTHING",
	10, {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, TEXTOID, BOOLOID,
	OIDOID, TEXTOID, OIDARRAYOID}
};

static ProjStatement delete_failed_stmt = {
	"DELETE FROM projections.failed_event f WHERE f.projection = $1", 1, {TEXTOID}
};

static ProjStatement delete_stmt = {
	"DELETE FROM projections.projection p WHERE p.name = $1", 1, {TEXTOID}
};

static ProjStatement set_state_stmt = {
	"UPDATE projections.projection SET state = $2 WHERE name = $1",
	2, {TEXTOID, TEXTOID}
};

static ProjStatement set_mode_stmt = {
	"UPDATE projections.projection SET mode = $2 WHERE name = $1",
	2, {TEXTOID, TEXTOID}
};

static ProjStatement set_tables_stmt = {
	"UPDATE projections.projection SET tables = $2::regclass[] WHERE name = $1",
	2, {TEXTOID, OIDARRAYOID}
};

static ProjStatement set_owner_stmt = {
	"UPDATE projections.projection SET owner = $2::regrole WHERE name = $1",
	2, {TEXTOID, OIDOID}
};

/*
 * (apply_rate: the events of this batch over the time since the previous
 * one, so a catch-up shows its speed and a live projection its flow)
 */
static ProjStatement save_live_stmt = {
	"UPDATE projections.projection SET checkpoint_key = $2,"
	" checkpoint_position = $3, skip_position = $4, position = $5,"
	" events_applied = events_applied + $6, events_skipped = events_skipped + $7,"
	" last_applied_at = CASE WHEN $6 > 0 THEN clock_timestamp()"
	"   ELSE last_applied_at END,"
	" apply_rate = CASE WHEN $6 = 0 THEN apply_rate"
	"   WHEN last_applied_at IS NULL THEN NULL"
	"   ELSE ($6 / greatest(extract(epoch FROM clock_timestamp() - last_applied_at)::float8,"
	"         0.001))::real END,"
	" rebuilding = $8, inline_active = $9, applied_by = pg_backend_pid()"
	" WHERE name = $1",
	9, {TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	BOOLOID, BOOLOID}
};

static ProjStatement save_build_stmt = {
	"UPDATE projections.projection SET build_key = $2,"
	" build_checkpoint_position = $3, build_position = $4,"
	" build_applied = build_applied + $5, build_skipped = build_skipped + $6,"
	" applied_by = pg_backend_pid()"
	" WHERE name = $1 AND build_schema IS NOT NULL",
	6, {TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID}
};

static ProjStatement record_error_stmt = {
	"UPDATE projections.projection SET state = CASE WHEN $5 THEN 'failed'"
	" ELSE state END, last_error = $2, error_sqlstate = $3,"
	" error_position = $4, error_at = now() WHERE name = $1",
	5, {TEXTOID, TEXTOID, TEXTOID, INT8OID, BOOLOID}
};

static ProjStatement record_skipped_stmt = {
	"INSERT INTO projections.failed_event (projection, global_position,"
	" stream_id, stream_version, event_type, error_message, sqlstate,"
	" during_rebuild) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
	" ON CONFLICT (projection, global_position, during_rebuild) DO UPDATE SET"
	" error_message = excluded.error_message, sqlstate = excluded.sqlstate,"
	" failed_at = excluded.failed_at",
	8, {TEXTOID, INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, BOOLOID}
};

static ProjStatement reset_stmt = {
	"UPDATE projections.projection SET checkpoint_key = 0,"
	" checkpoint_position = 0, skip_position = 0, position = 0,"
	" events_applied = 0, events_skipped = 0, rebuilding = true,"
	" inline_active = false, state = 'active', last_error = NULL,"
	" error_sqlstate = NULL, error_position = NULL, error_at = NULL,"
	" last_applied_at = NULL, apply_rate = NULL WHERE name = $1",
	1, {TEXTOID}
};

static ProjStatement set_frontier_stmt = {
	"UPDATE projections.projection SET inline_active = $6,"
	" checkpoint_key = $2, checkpoint_position = $3, skip_position = $4,"
	" position = $5 WHERE name = $1",
	6, {TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID}
};

static ProjStatement delete_build_failed_stmt = {
	"DELETE FROM projections.failed_event f"
	" WHERE f.projection = $1 AND f.during_rebuild", 1, {TEXTOID}
};

static ProjStatement start_build_stmt = {
	"UPDATE projections.projection SET build_schema = $2, build_key = 0,"
	" build_checkpoint_position = 0, build_position = 0, build_applied = 0,"
	" build_skipped = 0, build_analyzed = false, build_started_at = now()"
	" WHERE name = $1",
	2, {TEXTOID, TEXTOID}
};

static ProjStatement set_build_analyzed_stmt = {
	"UPDATE projections.projection SET build_analyzed = true WHERE name = $1",
	1, {TEXTOID}
};

static ProjStatement end_build_stmt = {
	"UPDATE projections.projection SET build_schema = NULL, build_key = NULL,"
	" build_checkpoint_position = NULL, build_position = NULL,"
	" build_applied = NULL, build_skipped = NULL, build_analyzed = NULL,"
	" build_started_at = NULL WHERE name = $1",
	1, {TEXTOID}
};

static ProjStatement complete_build_stmt = {
	"UPDATE projections.projection SET checkpoint_key = build_key,"
	" checkpoint_position = build_checkpoint_position, skip_position = 0,"
	" position = build_position, events_applied = build_applied,"
	" events_skipped = build_skipped, rebuilding = false,"
	" state = CASE state WHEN 'paused' THEN state ELSE 'active' END,"
	" last_error = NULL, error_sqlstate = NULL, error_position = NULL,"
	" error_at = NULL, last_applied_at = now(), build_schema = NULL,"
	" build_key = NULL, build_checkpoint_position = NULL, build_position = NULL,"
	" build_applied = NULL, build_skipped = NULL, build_analyzed = NULL,"
	" build_started_at = NULL WHERE name = $1",
	1, {TEXTOID}
};

static ProjStatement delete_live_failed_stmt = {
	"DELETE FROM projections.failed_event f"
	" WHERE f.projection = $1 AND NOT f.during_rebuild", 1, {TEXTOID}
};

static ProjStatement promote_build_failed_stmt = {
	"UPDATE projections.failed_event SET during_rebuild = false"
	" WHERE projection = $1 AND during_rebuild", 1, {TEXTOID}
};

/* ---- reading ---- */

static char *
TextCol(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static int64
Int8Col(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

static bool
BoolCol(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return !isnull && DatumGetBool(d);
}

/*
 * Decode one row of DEF_COLUMNS into def, allocating in the current memory
 * context.
 */
static void
DecodeRow(HeapTuple tup, TupleDesc desc, ProjectionDef *def)
{
	bool		isnull;
	Datum		d;

	memset(def, 0, sizeof(*def));
	def->name = TextCol(tup, desc, COL_NAME);
	def->handler = TextCol(tup, desc, COL_HANDLER);
	def->reset = TextCol(tup, desc, COL_RESET);
	d = SPI_getbinval(tup, desc, COL_EVENT_TYPES, &isnull);
	def->has_filter = !isnull;
	if (!isnull)
		def->event_types = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
	def->is_inline = strcmp(TextCol(tup, desc, COL_MODE), "inline") == 0;
	def->skip_on_error = strcmp(TextCol(tup, desc, COL_ON_ERROR), "skip") == 0;
	def->batch = BoolCol(tup, desc, COL_BATCH);
	def->owner = DatumGetObjectId(SPI_getbinval(tup, desc, COL_OWNER, &isnull));
	def->search_path = TextCol(tup, desc, COL_SEARCH_PATH);
	def->state = StateFromName(TextCol(tup, desc, COL_STATE));
	def->rebuilding = BoolCol(tup, desc, COL_REBUILDING);
	def->inline_active = BoolCol(tup, desc, COL_INLINE_ACTIVE);
	def->live.key = Int8Col(tup, desc, COL_CHECKPOINT_KEY);
	def->live.pos = Int8Col(tup, desc, COL_CHECKPOINT_POSITION);
	def->live.skip_position = Int8Col(tup, desc, COL_SKIP_POSITION);
	def->live.position = Int8Col(tup, desc, COL_POSITION);
	d = SPI_getbinval(tup, desc, COL_TABLES, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true,
						  TYPALIGN_INT, &elems, &nulls, &n);
		def->tables = palloc(sizeof(Oid) * Max(n, 1));
		for (i = 0; i < n; i++)
			if (!nulls[i])
				def->tables[def->ntables++] = DatumGetObjectId(elems[i]);
	}
	def->build_schema = TextCol(tup, desc, COL_BUILD_SCHEMA);
	def->build.key = Int8Col(tup, desc, COL_BUILD_KEY);
	def->build.pos = Int8Col(tup, desc, COL_BUILD_CHECKPOINT_POSITION);
	def->build.position = Int8Col(tup, desc, COL_BUILD_POSITION);
	def->build_analyzed = BoolCol(tup, desc, COL_BUILD_ANALYZED);
}

/*
 * Read one projection's row, seeing every committed change.  Returns false
 * if there is no such projection.
 */
bool
ProjCatalogLoad(const char *name, ProjectionDef *def)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		arg;
	bool		found;

	ProjRequireCurrentVersion();
	arg = CStringGetTextDatum(name);
	SPI_connect();
	ProjRun(&load_stmt, &arg, NULL, true, 1);
	found = SPI_processed > 0;
	if (found)
	{
		MemoryContext spi = MemoryContextSwitchTo(cxt);

		DecodeRow(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, def);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	return found;
}

/* ProjCatalogLoad for the SQL API: an unknown name is an error. */
ProjectionDef *
ProjCatalogLoadOrError(const char *name)
{
	ProjectionDef *def = palloc(sizeof(ProjectionDef));

	if (!ProjCatalogLoad(name, def))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("projection \"%s\" does not exist", name)));
	return def;
}

/* Every row a statement returns, as a list of ProjectionDef. */
static List *
LoadList(ProjStatement *stmt)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *defs = NIL;
	uint64		i;

	SPI_connect();
	ProjRun(stmt, NULL, NULL, true, 0);
	MemoryContextSwitchTo(cxt);
	for (i = 0; i < SPI_processed; i++)
	{
		ProjectionDef *def = palloc(sizeof(ProjectionDef));

		DecodeRow(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, def);
		defs = lappend(defs, def);
	}
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	return defs;
}

/*
 * The projections a worker may have work for: active async ones, and those
 * with an online rebuild under way.
 */
List *
ProjCatalogListRunnable(bool *builds)
{
	List	   *defs;
	ListCell   *lc;

	ProjRequireCurrentVersion();
	defs = LoadList(&list_runnable_stmt);
	*builds = false;
	foreach(lc, defs)
		if (((ProjectionDef *) lfirst(lc))->build_schema != NULL)
			*builds = true;
	return defs;
}

/*
 * The active inline projections, in name order.  (Appends work with every
 * version of the catalog.)
 */
List *
ProjCatalogListInline(void)
{
	return LoadList(ProjExtGet(false)->current ? &list_inline_stmt :
					&list_inline_compat_stmt);
}

/* The names of the projections a role owns in this database. */
List *
ProjCatalogOwnedBy(Oid role)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *names = NIL;
	Datum		arg = ObjectIdGetDatum(role);
	uint64		i;

	SPI_connect();
	ProjRun(&owned_by_stmt, &arg, NULL, true, 0);
	MemoryContextSwitchTo(cxt);
	for (i = 0; i < SPI_processed; i++)
		names = lappend(names, TextCol(SPI_tuptable->vals[i],
									   SPI_tuptable->tupdesc, 1));
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	return names;
}

/*
 * Only the projection's owner (or a member of that role, or a superuser)
 * may change it.
 */
void
ProjCatalogCheckOwner(const ProjectionDef *def)
{
	if (!has_privs_of_role(GetUserId(), def->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of projection \"%s\"", def->name)));
}

/*
 * Lock one projection's model for applying (the worker, run() and every
 * state-changing function): exactly one applier at a time.  The lock is an
 * in-memory advisory lock held to the end of the transaction, so an idle
 * poll writes nothing.  The shadow model of an online rebuild has a lock of
 * its own: it is applied beside the live one.
 */
bool
ProjCatalogLock(const char *name, ProjTarget target, bool wait)
{
	LOCKTAG		tag;
	uint64		h = hash_bytes_extended((const unsigned char *) name,
										strlen(name), 0);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
						 target == PROJ_TARGET_LIVE ? PROJ_LOCK_PROJECTION :
						 PROJ_LOCK_BUILD);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/* ---- writing ---- */

/* Run a write with its arguments, in its own SPI connection. */
static uint64
Write(ProjStatement *stmt, Datum *args, const char *nulls)
{
	MemoryContext cxt = CurrentMemoryContext;
	uint64		n;

	SPI_connect();
	ProjRun(stmt, args, nulls, false, 0);
	n = SPI_processed;
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	return n;
}

static void
WriteName(ProjStatement *stmt, const char *name)
{
	Datum		arg = CStringGetTextDatum(name);

	(void) Write(stmt, &arg, NULL);
}

/* Insert a new projection's row; false if the name is taken. */
bool
ProjCatalogInsert(const char *name, const char *handler, const char *reset,
				  Datum event_types, bool has_filter, bool is_inline, bool skip,
				  bool batch, Oid owner, const char *search_path, Datum tables,
				  bool has_tables)
{
	Datum		args[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(handler);
	if (reset != NULL)
		args[2] = CStringGetTextDatum(reset);
	else
		nulls[2] = 'n';
	if (has_filter)
		args[3] = event_types;
	else
		nulls[3] = 'n';
	args[4] = CStringGetTextDatum(is_inline ? "inline" : "async");
	args[5] = CStringGetTextDatum(skip ? "skip" : "pause");
	args[6] = BoolGetDatum(batch);
	args[7] = ObjectIdGetDatum(owner);
	args[8] = CStringGetTextDatum(search_path);
	if (has_tables)
		args[9] = tables;
	else
		nulls[9] = 'n';
	return Write(&insert_stmt, args, nulls) > 0;
}

/* Remove a projection's row and its failed events. */
void
ProjCatalogDelete(const char *name)
{
	WriteName(&delete_failed_stmt, name);
	WriteName(&delete_stmt, name);
}

void
ProjCatalogSetState(const char *name, ProjState state)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(ProjStateName(state));
	(void) Write(&set_state_stmt, args, NULL);
}

void
ProjCatalogSetMode(const char *name, bool is_inline)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(is_inline ? "inline" : "async");
	(void) Write(&set_mode_stmt, args, NULL);
}

void
ProjCatalogSetTables(const char *name, Datum tables, bool has_tables)
{
	Datum		args[2];
	char		nulls[2] = {' ', has_tables ? ' ' : 'n'};

	args[0] = CStringGetTextDatum(name);
	args[1] = tables;
	(void) Write(&set_tables_stmt, args, nulls);
}

void
ProjCatalogSetOwner(const char *name, Oid owner)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(name);
	args[1] = ObjectIdGetDatum(owner);
	(void) Write(&set_owner_stmt, args, NULL);
}

/*
 * Move a model's checkpoint, with the counters of what was applied.
 */
void
ProjCatalogSaveProgress(const char *name, ProjTarget target,
						const ProjProgress *progress)
{
	Datum		args[9];

	args[0] = CStringGetTextDatum(name);
	args[1] = Int64GetDatum(progress->frontier.key);
	args[2] = Int64GetDatum(progress->frontier.pos);
	if (target == PROJ_TARGET_BUILD)
	{
		/* (a shadow model starts from nothing: it skips nothing by position) */
		args[3] = Int64GetDatum(progress->frontier.position);
		args[4] = Int64GetDatum(progress->applied);
		args[5] = Int64GetDatum(progress->skipped);
		(void) Write(&save_build_stmt, args, NULL);
		return;
	}
	args[3] = Int64GetDatum(progress->frontier.skip_position);
	args[4] = Int64GetDatum(progress->frontier.position);
	args[5] = Int64GetDatum(progress->applied);
	args[6] = Int64GetDatum(progress->skipped);
	args[7] = BoolGetDatum(progress->rebuilding);
	args[8] = BoolGetDatum(progress->inline_active);
	(void) Write(&save_live_stmt, args, NULL);
}

/*
 * Record a handler error on the projection's row: with pause, the row goes
 * to state 'failed'; otherwise only the error columns change.
 */
void
ProjCatalogRecordError(const char *name, const char *message, int sqlerrcode,
					   int64 position, bool pause)
{
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(message);
	args[2] = CStringGetTextDatum(unpack_sql_state(sqlerrcode));
	if (position > 0)
		args[3] = Int64GetDatum(position);
	else
		nulls[3] = 'n';
	args[4] = BoolGetDatum(pause);
	(void) Write(&record_error_stmt, args, nulls);
}

/* Record an event skipped under on_error = skip (by the live or the shadow model). */
void
ProjCatalogRecordSkipped(const char *name, ProjTarget target,
						 const ProjSkippedEvent *event)
{
	Datum		args[8];

	args[0] = CStringGetTextDatum(name);
	args[1] = Int64GetDatum(event->position);
	args[2] = CStringGetTextDatum(event->stream_id);
	args[3] = Int32GetDatum(event->stream_version);
	args[4] = CStringGetTextDatum(event->event_type);
	args[5] = CStringGetTextDatum(event->message);
	args[6] = CStringGetTextDatum(unpack_sql_state(event->sqlerrcode));
	args[7] = BoolGetDatum(target == PROJ_TARGET_BUILD);
	(void) Write(&record_skipped_stmt, args, NULL);
	if (target == PROJ_TARGET_LIVE)
		ProjCatalogRecordError(name, event->message, event->sqlerrcode,
							   event->position, false);
}

/* A plain rebuild: the checkpoint back to the start, errors forgotten. */
void
ProjCatalogResetForRebuild(const char *name)
{
	WriteName(&reset_stmt, name);
	WriteName(&delete_failed_stmt, name);
}

/* Set the live checkpoint (switching a projection off inline, or on). */
void
ProjCatalogSetLiveFrontier(const char *name, const ProjFrontier *frontier,
						   bool inline_active)
{
	Datum		args[6];

	args[0] = CStringGetTextDatum(name);
	args[1] = Int64GetDatum(frontier->key);
	args[2] = Int64GetDatum(frontier->pos);
	args[3] = Int64GetDatum(frontier->skip_position);
	args[4] = Int64GetDatum(frontier->position);
	args[5] = BoolGetDatum(inline_active);
	(void) Write(&set_frontier_stmt, args, NULL);
}

/* An online rebuild starts: its shadow model lives in schema. */
void
ProjCatalogStartBuild(const char *name, const char *schema)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(schema);
	(void) Write(&start_build_stmt, args, NULL);
	WriteName(&delete_build_failed_stmt, name);
}

void
ProjCatalogSetBuildAnalyzed(const char *name)
{
	WriteName(&set_build_analyzed_stmt, name);
}

/* An online rebuild ends without an exchange (cancelled or failed). */
void
ProjCatalogEndBuild(const char *name)
{
	WriteName(&end_build_stmt, name);
	WriteName(&delete_build_failed_stmt, name);
}

/*
 * An online rebuild's model became the live one: its checkpoint, counters
 * and skipped events are the projection's now.
 */
void
ProjCatalogCompleteBuild(const char *name)
{
	WriteName(&complete_build_stmt, name);
	WriteName(&delete_live_failed_stmt, name);
	WriteName(&promote_build_failed_stmt, name);
}

PG_FUNCTION_INFO_V1(projections_catalog_guard);

/*
 * BEFORE UPDATE, DELETE and TRUNCATE statement trigger on the extension's
 * catalog tables: only the extension writes them, not even a superuser by
 * hand (INSERT stays open to the owner, for pg_restore).  The owner may
 * after SET projections.maintenance = on.
 */
Datum
projections_catalog_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "projections_catalog_guard must be called as a trigger");
	rel = trigdata->tg_relation;
	if (ProjInternalWriteInProgress() ||
		(proj_maintenance && ProjRelationOwnerCheck(RelationGetRelid(rel), GetUserId())))
		return PointerGetDatum(NULL);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s.%s is written only by the projections extension",
					get_namespace_name(RelationGetNamespace(rel)),
					RelationGetRelationName(rel)),
			 errhint("Use projections.register(), unregister(), pause(), resume() or rebuild().")));
	return PointerGetDatum(NULL);
}
