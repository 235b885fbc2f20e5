/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The extension's objects, its catalog rows, and ordering keys.
 *
 * Everything that reads or writes projections.projection, the key offset,
 * or resolves the extension's relations lives here.  Catalog access runs
 * as the extension's owner, so that roles that may only call the API never
 * need privileges on the catalog, and nobody but the extension writes it.
 *
 * Ordering keys.  Each event stores ordering_key = greatest(xid + offset,
 * ordering_key of the stream's previous event), where xid is the appending
 * transaction's full transaction id.  A reader only consumes events with
 * ordering_key < xmin(snapshot) + offset (the "safe key"), so an event whose
 * transaction may still commit is never passed over.  The offset is zero
 * until a restore brings in keys from a cluster whose transaction ids ran
 * ahead of this one; then it moves forward so that new keys are above
 * every restored one (see ProjKeyOffset).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "commands/trigger.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "compat.h"
#include "projections.h"

static ProjExtInfo ext_info;
static bool ext_info_valid = false;

static bool offset_valid = false;
static int64 offset_value = 0;

/* > 0 while the extension itself writes its catalog (see ProjCatalogGuard) */
static int	internal_writes = 0;

/*
 * The statements the extension runs through SPI, prepared once per process
 * and kept.  Every statement names its columns explicitly.
 */
typedef struct ProjPlanSpec
{
	const char *sql;
	int			nargs;
	Oid			argtypes[8];
} ProjPlanSpec;

static const ProjPlanSpec plan_specs[PLAN_COUNT] = {
	[PLAN_LOAD_PROJECTION] = {
		"SELECT name, handler, reset, event_types, mode, on_error, owner::oid,"
		" search_path, state, rebuilding, inline_active, checkpoint_key,"
		" checkpoint_position, skip_position, position"
		" FROM projections.projection WHERE name = $1",
		1, {TEXTOID}
	},
	[PLAN_SAVE_PROGRESS] = {
		"UPDATE projections.projection SET checkpoint_key = $2,"
		" checkpoint_position = $3, position = $4,"
		" events_applied = events_applied + $5,"
		" events_skipped = events_skipped + $6,"
		" last_applied_at = CASE WHEN $5 > 0 THEN now() ELSE last_applied_at END,"
		" rebuilding = $7, inline_active = $8"
		" WHERE name = $1",
		8, {TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID, BOOLOID}
	},
	[PLAN_FETCH_EVENTS] = {
		"SELECT e.ordering_key, e.global_position, e.stream_id,"
		" e.stream_version, e.event_type, e"
		" FROM projections.events e"
		" WHERE (e.ordering_key, e.global_position) > ($1, $2)"
		" AND e.ordering_key < $3 AND e.global_position > $4"
		" AND ($5::text[] IS NULL OR e.event_type = ANY ($5))"
		" ORDER BY e.ordering_key, e.global_position LIMIT $6",
		6, {INT8OID, INT8OID, INT8OID, INT8OID, TEXTARRAYOID, INT8OID}
	},
	[PLAN_PROBE_EVENTS] = {
		"SELECT 1 FROM projections.events e"
		" WHERE (e.ordering_key, e.global_position) > ($1, $2)"
		" AND e.ordering_key < $3"
		" ORDER BY e.ordering_key, e.global_position LIMIT 1",
		3, {INT8OID, INT8OID, INT8OID}
	},
	[PLAN_RECORD_FAILURE] = {
		"UPDATE projections.projection SET state = CASE WHEN $5 THEN state"
		" ELSE 'failed' END, last_error = $2, error_sqlstate = $3,"
		" error_position = $4, error_at = now() WHERE name = $1",
		5, {TEXTOID, TEXTOID, TEXTOID, INT8OID, BOOLOID}
	},
	[PLAN_RECORD_SKIPPED] = {
		"INSERT INTO projections.failed_event (projection, global_position,"
		" stream_id, stream_version, event_type, error_message, sqlstate)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7)"
		" ON CONFLICT (projection, global_position) DO UPDATE SET"
		" error_message = excluded.error_message, sqlstate = excluded.sqlstate,"
		" failed_at = excluded.failed_at",
		7, {TEXTOID, INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID}
	},
	[PLAN_LIST_ASYNC] = {
		"SELECT name FROM projections.projection"
		" WHERE state = 'active' AND NOT inline_active ORDER BY name",
		0, {InvalidOid}
	},
	[PLAN_LIST_INLINE] = {
		"SELECT name, handler, event_types, owner::oid, search_path"
		" FROM projections.projection"
		" WHERE inline_active AND state = 'active' ORDER BY name",
		0, {InvalidOid}
	},
	[PLAN_ADVANCE_STREAM] = {
		"INSERT INTO projections.streams AS s (stream_id, version, last_key)"
		" VALUES ($1, 1, $2)"
		" ON CONFLICT (stream_id) DO UPDATE SET version = s.version + 1,"
		" last_key = greatest(s.last_key, excluded.last_key)"
		" RETURNING version, last_key",
		2, {TEXTOID, INT8OID}
	},
	[PLAN_RESTORE_STREAM] = {
		"INSERT INTO projections.streams AS s (stream_id, version, last_key)"
		" VALUES ($1, $2, $3)"
		" ON CONFLICT (stream_id) DO UPDATE SET"
		" version = greatest(s.version, excluded.version),"
		" last_key = greatest(s.last_key, excluded.last_key)",
		3, {TEXTOID, INT4OID, INT8OID}
	},
	[PLAN_INSERT_EVENT] = {
		"INSERT INTO projections.events (stream_id, stream_version, event_type,"
		" data, metadata) VALUES ($1, $2, $3, $4, $5) RETURNING global_position",
		5, {TEXTOID, INT4OID, TEXTOID, JSONBOID, JSONBOID}
	},
	[PLAN_READ_OFFSET] = {
		"SELECT key_offset FROM projections.key_offset",
		0, {InvalidOid}
	},
	[PLAN_MAX_KEY] = {
		"SELECT greatest((SELECT max(ordering_key) FROM projections.events),"
		" (SELECT max(checkpoint_key) FROM projections.projection))",
		0, {InvalidOid}
	},
	[PLAN_SET_OFFSET] = {
		"UPDATE projections.key_offset SET key_offset = $1",
		1, {INT8OID}
	},
	[PLAN_MAX_POSITION] = {
		"SELECT max(global_position) FROM projections.events",
		0, {InvalidOid}
	},
	[PLAN_LAST_SAFE_EVENT] = {
		"SELECT ordering_key, global_position FROM projections.events"
		" WHERE ordering_key < $1"
		" ORDER BY ordering_key DESC, global_position DESC LIMIT 1",
		1, {INT8OID}
	},
	[PLAN_WAIT_TARGET] = {
		"SELECT ordering_key, global_position FROM projections.events e"
		" WHERE (e.ordering_key, e.global_position) > ($1, $2)"
		" AND e.global_position <= $3"
		" ORDER BY e.ordering_key DESC, e.global_position DESC LIMIT 1",
		3, {INT8OID, INT8OID, INT8OID}
	},
	[PLAN_READ_CHECKPOINT] = {
		"SELECT checkpoint_key, checkpoint_position, inline_active, state"
		" FROM projections.projection WHERE name = $1",
		1, {TEXTOID}
	},
	[PLAN_MAX_EVENT_KEY] = {
		"SELECT max(ordering_key) FROM projections.events",
		0, {InvalidOid}
	},
	[PLAN_HEAD] = {
		"SELECT global_position FROM projections.events"
		" WHERE ordering_key < $1 ORDER BY global_position DESC LIMIT 1",
		1, {INT8OID}
	},
};

static SPIPlanPtr plans[PLAN_COUNT];

/*
 * Owner and schema of the extension, read from pg_extension.
 */
static bool
ExtensionOwnerAndSchema(Oid extoid, Oid *owner, Oid *schema)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_extension form = (Form_pg_extension) GETSTRUCT(tup);

		*owner = form->extowner;
		*schema = form->extnamespace;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The extension's objects in this database, cached per process until one of
 * its relations is invalidated.  Returns NULL when the extension is not
 * installed (or its creation has not committed yet) and missing_ok is set.
 */
const ProjExtInfo *
ProjExtGet(bool missing_ok)
{
	if (!ext_info_valid)
	{
		ProjExtInfo info;

		memset(&info, 0, sizeof(info));
		info.extension_oid = get_extension_oid(PROJ_EXTENSION_NAME, true);
		if (OidIsValid(info.extension_oid) &&
			ExtensionOwnerAndSchema(info.extension_oid, &info.owner,
									&info.schema_oid))
		{
			info.events_relid = get_relname_relid("events", info.schema_oid);
			info.catalog_relid = get_relname_relid("projection", info.schema_oid);
			info.offset_relid = get_relname_relid("key_offset", info.schema_oid);
			info.sequence_relid = get_relname_relid("events_global_position_seq",
													info.schema_oid);
			info.streams_relid = get_relname_relid("streams", info.schema_oid);
			if (OidIsValid(info.events_relid))
				info.events_type = get_rel_type_id(info.events_relid);
		}

		if (!OidIsValid(info.events_relid) || !OidIsValid(info.catalog_relid) ||
			!OidIsValid(info.offset_relid) || !OidIsValid(info.sequence_relid) ||
			!OidIsValid(info.streams_relid))
		{
			if (missing_ok)
				return NULL;
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"%s\" is not installed in this database",
							PROJ_EXTENSION_NAME),
					 errhint("Run CREATE EXTENSION %s.", PROJ_EXTENSION_NAME)));
		}
		ext_info = info;
		ext_info_valid = true;
	}
	return &ext_info;
}

/*
 * Relcache invalidation callback: forget what depends on the extension's
 * relations when one of them (or everything) is invalidated.
 */
void
ProjInvalidateCaches(Datum arg, Oid relid)
{
	if (OidIsValid(relid) &&
		(!ext_info_valid ||
		 (relid != ext_info.events_relid && relid != ext_info.catalog_relid &&
		  relid != ext_info.offset_relid)))
		return;
	ext_info_valid = false;
	offset_valid = false;
	ProjInlineInvalidate();
}

/*
 * Run as the extension's owner, for catalog access.  The caller's security
 * restrictions stay in force; an error restores the user through the
 * (sub)transaction abort.
 */
static void
ProjBecomeExtensionOwner(ProjSavedUser *saved)
{
	const ProjExtInfo *ext = ProjExtGet(false);

	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(ext->owner,
						   saved->sec_context | SECURITY_LOCAL_USERID_CHANGE);
}

static void
ProjRestoreUser(const ProjSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * The kept SPI plan for one of the extension's statements.  The caller is
 * connected to SPI.
 */
static SPIPlanPtr
ProjPlan(ProjPlanId id)
{
	if (plans[id] == NULL)
	{
		const ProjPlanSpec *spec = &plan_specs[id];
		SPIPlanPtr	plan;

		plan = SPI_prepare(spec->sql, spec->nargs, (Oid *) spec->argtypes);
		if (plan == NULL)
			elog(ERROR, "could not prepare projections statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep projections statement");
		plans[id] = plan;
	}
	return plans[id];
}

/*
 * Execute a plan as the extension's owner, marking the catalog writes as the
 * extension's own (see projections_catalog_guard).
 */
static int
ExecuteAsOwner(SPIPlanPtr plan, Datum *values, const char *nulls,
			   Snapshot snapshot, long count)
{
	ProjSavedUser saved;
	int			ret;

	ProjBecomeExtensionOwner(&saved);
	internal_writes++;
	PG_TRY();
	{
		ret = SPI_execute_snapshot(plan, values, nulls, snapshot, InvalidSnapshot,
								   false, true, count);
	}
	PG_FINALLY();
	{
		internal_writes--;
	}
	PG_END_TRY();
	ProjRestoreUser(&saved);
	if (ret < 0)
		elog(ERROR, "projections statement failed: %s",
			 SPI_result_code_string(ret));
	return ret;
}

/*
 * Execute one of the extension's statements as the extension's owner.  With
 * latest, the statement sees every committed change (and the transaction's
 * own), whatever the transaction's isolation level: catalog rows and stream
 * heads must never be read from a stale snapshot.
 */
int
ProjExecute(ProjPlanId id, Datum *values, const char *nulls, bool latest,
			long count)
{
	return ExecuteAsOwner(ProjPlan(id), values, nulls,
						  latest ? GetLatestSnapshot() : InvalidSnapshot, count);
}

/*
 * Take a share lock on the extension object, so that DROP EXTENSION waits
 * for the current batch instead of pulling the tables away under it.
 * Returns false when the extension is gone (or not yet committed).
 */
bool
ProjLockExtension(void)
{
	const ProjExtInfo *ext = ProjExtGet(true);

	if (ext == NULL)
		return false;
	LockDatabaseObject(ExtensionRelationId, ext->extension_oid, 0,
					   AccessShareLock);
	/* the lock processed invalidations: look again */
	ext = ProjExtGet(true);
	return ext != NULL;
}

/*
 * Lock one projection for applying (the worker, run() and every
 * state-changing function): exactly one applier at a time.  The lock is an
 * in-memory advisory lock held to the end of the transaction, so an idle
 * poll writes nothing.
 */
bool
ProjLockProjection(const char *name, bool wait)
{
	LOCKTAG		tag;
	uint64		h = hash_bytes_extended((const unsigned char *) name,
										strlen(name), 0);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
						 PROJ_LOCK_PROJECTION);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

static char *
TextOrNull(HeapTuple tup, TupleDesc desc, int col)
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
 * Read one projection's catalog row, seeing every committed change.  The
 * caller is connected to SPI; the result is allocated in the caller's
 * current memory context.  Returns false if there is no such projection.
 */
bool
ProjLoad(const char *name, ProjectionDef *def)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		arg = CStringGetTextDatum(name);
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		types;
	char	   *text;

	ProjExecute(PLAN_LOAD_PROJECTION, &arg, NULL, true, 1);
	if (SPI_processed == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	MemoryContextSwitchTo(cxt);
	memset(def, 0, sizeof(*def));
	def->name = TextOrNull(tup, desc, 1);
	def->handler = TextOrNull(tup, desc, 2);
	def->reset = TextOrNull(tup, desc, 3);
	types = SPI_getbinval(tup, desc, 4, &isnull);
	def->has_filter = !isnull;
	if (!isnull)
		def->event_types = PointerGetDatum(PG_DETOAST_DATUM_COPY(types));
	text = TextOrNull(tup, desc, 5);
	def->is_inline = strcmp(text, "inline") == 0;
	text = TextOrNull(tup, desc, 6);
	def->skip_on_error = strcmp(text, "skip") == 0;
	def->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
	def->search_path = TextOrNull(tup, desc, 8);
	text = TextOrNull(tup, desc, 9);
	def->state = text[0];
	def->rebuilding = BoolCol(tup, desc, 10);
	def->inline_active = BoolCol(tup, desc, 11);
	def->checkpoint_key = Int8Col(tup, desc, 12);
	def->checkpoint_position = Int8Col(tup, desc, 13);
	def->skip_position = Int8Col(tup, desc, 14);
	def->position = Int8Col(tup, desc, 15);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * ProjLoad for the SQL API: an unknown name is an error.
 */
ProjectionDef *
ProjLoadOrError(const char *name)
{
	ProjectionDef *def = palloc(sizeof(ProjectionDef));

	if (!ProjLoad(name, def))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("projection \"%s\" does not exist", name)));
	return def;
}

/*
 * Only the projection's owner (or a member of that role, or a superuser)
 * may change it.
 */
void
ProjCheckOwner(const ProjectionDef *def)
{
	if (!has_privs_of_role(GetUserId(), def->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of projection \"%s\"", def->name)));
}

/*
 * Run a one-off statement (the SQL API's state changes) as the extension's
 * owner.  The caller is connected to SPI.
 */
int
ProjExecuteSql(const char *sql, int nargs, Oid *types, Datum *values,
			   const char *nulls)
{
	ProjSavedUser saved;
	SPIPlanPtr	plan;
	int			ret;

	ProjBecomeExtensionOwner(&saved);
	plan = SPI_prepare(sql, nargs, types);
	ProjRestoreUser(&saved);
	if (plan == NULL)
		elog(ERROR, "could not prepare projections statement: %s",
			 SPI_result_code_string(SPI_result));
	ret = ExecuteAsOwner(plan, values, nulls, InvalidSnapshot, 0);
	SPI_freeplan(plan);
	return ret;
}

/* resolved handler and reset signatures, forgotten when a function changes */
#define FUNC_KEY_LEN 512

typedef struct FuncCacheEntry
{
	char		signature[FUNC_KEY_LEN];	/* hash key */
	Oid			func;
} FuncCacheEntry;

static HTAB *func_cache = NULL;

/*
 * Forget resolved functions (a function or a schema changed).
 */
void
ProjInvalidateFunctions(void)
{
	if (func_cache != NULL)
	{
		hash_destroy(func_cache);
		func_cache = NULL;
	}
}

/*
 * The function named by a stored signature, or InvalidOid if it no longer
 * exists.  Signatures are stored schema-qualified, so the search path does
 * not matter.  Cached per process until pg_proc or pg_namespace changes.
 */
Oid
ProjResolveFunction(const char *signature)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;
	FuncCacheEntry *entry = NULL;
	bool		found;
	Oid			func;

	if (strlen(signature) < FUNC_KEY_LEN)
	{
		if (func_cache == NULL)
		{
			HASHCTL		ctl;

			memset(&ctl, 0, sizeof(ctl));
			ctl.keysize = FUNC_KEY_LEN;
			ctl.entrysize = sizeof(FuncCacheEntry);
			ctl.hcxt = CacheMemoryContext;
			func_cache = hash_create("projections functions", 16, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		}
		entry = hash_search(func_cache, signature, HASH_FIND, &found);
		if (found)
			return entry->func;
	}

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(signature);
	fcinfo->args[0].isnull = false;
	result = to_regprocedure(fcinfo);
	func = fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);

	/* (the look-up may have processed an invalidation that dropped the cache) */
	if (func_cache != NULL && strlen(signature) < FUNC_KEY_LEN && OidIsValid(func))
	{
		entry = hash_search(func_cache, signature, HASH_ENTER, &found);
		entry->func = func;
	}
	return func;
}

/*
 * A 32-bit transaction id, not older than the oldest running one, as a
 * 64-bit full transaction id.
 */
static uint64
ProjFullXid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return ((uint64) epoch << 32) | xid;
}

/*
 * Read the key offset and check it against the keys present: a key at or
 * above the next transaction id (plus offset) can only come from a restore
 * of another cluster's events.  Then move the offset forward, under a lock
 * that waits for every appender, so that every key assigned from now on is
 * above every key present.
 */
static int64
ReadAndVerifyOffset(void)
{
	const ProjExtInfo *ext = ProjExtGet(false);
	int64		offset;
	int64		max_key;
	bool		isnull;
	uint64		next;

	SPI_connect();
	ProjExecute(PLAN_READ_OFFSET, NULL, NULL, true, 1);
	offset = SPI_processed > 0 ?
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)) : 0;
	ProjExecute(PLAN_MAX_KEY, NULL, NULL, true, 1);
	max_key = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		max_key = 0;
	next = U64FromFullTransactionId(ReadNextFullTransactionId());

	/* (a standby follows its primary's offset: it cannot move it) */
	if (max_key >= (int64) next + offset && !RecoveryInProgress())
	{
		Snapshot	snap;
		uint64		oldest;
		FullTransactionId own = GetTopFullTransactionIdIfAny();
		int64		new_offset;
		Datum		arg;

		LockRelationOid(ext->events_relid, ShareRowExclusiveLock);
		ProjExecute(PLAN_MAX_KEY, NULL, NULL, true, 1);
		max_key = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
		ProjExecute(PLAN_READ_OFFSET, NULL, NULL, true, 1);
		offset = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
		snap = GetLatestSnapshot();
		oldest = ProjFullXid(snap->xmin);
		if (FullTransactionIdIsValid(own) &&
			U64FromFullTransactionId(own) < oldest)
			oldest = U64FromFullTransactionId(own);

		if (max_key >= (int64) oldest + offset)
		{
			new_offset = max_key + 1 - (int64) oldest;
			arg = Int64GetDatum(new_offset);
			ProjExecute(PLAN_SET_OFFSET, &arg, NULL, true, 0);
			CacheInvalidateRelcacheByRelid(ext->offset_relid);
			ereport(LOG,
					(errmsg("projections: ordering keys moved forward by "
							INT64_FORMAT " in database \"%s\"",
							new_offset - offset,
							get_database_name(MyDatabaseId)),
					 errdetail("The events table holds ordering keys above this "
							   "cluster's transaction ids, as after a restore "
							   "from another cluster.")));
			offset = new_offset;
		}
	}
	SPI_finish();
	return offset;
}

/*
 * The ordering-key offset of this database, verified once per process and
 * again whenever the key offset relation is invalidated.
 */
int64
ProjKeyOffset(void)
{
	if (!offset_valid)
	{
		offset_value = ReadAndVerifyOffset();
		offset_valid = true;
	}
	return offset_value;
}

/*
 * The safe key of a snapshot: every event with a smaller ordering key was
 * written by a transaction that had ended when the snapshot was taken.
 */
int64
ProjSafeKey(Snapshot snapshot)
{
	return (int64) ProjFullXid(snapshot->xmin) + ProjKeyOffset();
}

/*
 * The smallest ordering key the current transaction may give an event.
 */
int64
ProjNewKeyBase(void)
{
	FullTransactionId xid = GetTopFullTransactionId();

	return (int64) U64FromFullTransactionId(xid) + ProjKeyOffset();
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
	if (internal_writes > 0 ||
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
