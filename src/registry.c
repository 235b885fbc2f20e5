/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The extension's identity in this database, and the one place its own
 *	  statements are prepared and executed.
 *
 * The extension's statements read and write its catalog and event store,
 * which the roles calling the API have no privileges on, so they run as
 * the extension's owner, a superuser.  That makes every such statement a
 * place where a caller could try to borrow the owner's power: an operator,
 * function, aggregate or type of the caller's that a statement resolved
 * through the caller's search_path would run as the superuser.  So every
 * statement is prepared and executed here, and only here, under
 *
 *	- the extension's owner, in a security-restricted operation;
 *	- search_path = pg_catalog, pg_temp, set in a GUC nest level that ends
 *	  with the statement (kept plans are replanned under the same path, so
 *	  they never resolve a name any other way);
 *	- the catalog guard's exemption (see catalog.c), which handler calls
 *	  suspend while user code runs (handler.c).
 *
 * The caller's memory context is current again when a statement returns
 * (SPI leaves its own procedure context current).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "settings.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "registry.h"

static ProjExtInfo ext_info;
static bool ext_info_valid = false;

/* > 0 while the extension itself executes one of its statements */
static int	internal_writes = 0;

/*
 * Owner and schema of the extension, read from pg_extension.
 */
static bool
ExtensionOwnerAndSchema(Oid extoid, Oid *owner, Oid *schema, bool *current)
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
		bool		isnull;
		Datum		version = heap_getattr(tup, Anum_pg_extension_extversion,
										   RelationGetDescr(rel), &isnull);

		*owner = form->extowner;
		*schema = form->extnamespace;
		*current = !isnull &&
			strcmp(TextDatumGetCString(version), PROJ_SQL_VERSION) == 0;
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
									&info.schema_oid, &info.current))
		{
			info.events_relid = get_relname_relid("events", info.schema_oid);
			info.catalog_relid = get_relname_relid("projection", info.schema_oid);
			info.offset_relid = get_relname_relid("key_offset", info.schema_oid);
			info.sequence_relid = get_relname_relid("events_global_position_seq",
													info.schema_oid);
			info.streams_relid = get_relname_relid("streams", info.schema_oid);
			if (OidIsValid(info.events_relid))
			{
				info.events_type = get_rel_type_id(info.events_relid);
				info.events_array_type = get_array_type(info.events_type);
			}
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
 * The cached identity, or NULL: no catalog access (for invalidation
 * callbacks, which must not read catalogs).
 */
const ProjExtInfo *
ProjExtPeek(void)
{
	return ext_info_valid ? &ext_info : NULL;
}

/* Relcache callback: forget the identity when one of its relations changes. */
static void
InvalidateExtInfo(Datum arg, Oid relid)
{
	if (OidIsValid(relid) && ext_info_valid &&
		relid != ext_info.events_relid && relid != ext_info.catalog_relid &&
		relid != ext_info.offset_relid && relid != ext_info.streams_relid &&
		relid != ext_info.sequence_relid)
		return;
	ext_info_valid = false;
}

/*
 * The projection functions and the worker need the catalog of this
 * library's version: between installing a new library and ALTER EXTENSION
 * UPDATE they say so.  (The event store works with every version.)
 */
void
ProjRequireCurrentVersion(void)
{
	if (!ProjExtGet(false)->current)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" must be updated to version %s",
						PROJ_EXTENSION_NAME, PROJ_SQL_VERSION),
				 errdetail("The installed library works with version %s of its SQL objects.",
						   PROJ_SQL_VERSION),
				 errhint("Run ALTER EXTENSION %s UPDATE.", PROJ_EXTENSION_NAME)));
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
 * Set search_path to pg_catalog, pg_temp in a new GUC nest level; returns
 * the level to pass to ProjUnpinSearchPath, or -1 when the path is already
 * exactly that (a statement run from inside another one).  On error the
 * (sub)transaction abort ends the level.
 */
int
ProjPinSearchPath(void)
{
	int			level;

	if (namespace_search_path != NULL &&
		strcmp(namespace_search_path, PROJ_SAFE_SEARCH_PATH) == 0)
		return -1;
	level = NewGUCNestLevel();
	(void) set_config_option("search_path", PROJ_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
ProjUnpinSearchPath(int level)
{
	if (level >= 0)
		AtEOXact_GUC(false, level);
}

/* Whether one of the extension's own statements is executing now. */
bool
ProjInternalWriteInProgress(void)
{
	return internal_writes > 0;
}

/*
 * Suspend the exemption while user code runs (a handler called from a
 * trigger of the extension's own INSERT); returns what to resume.
 */
int
ProjSuspendInternalWrites(void)
{
	int			saved = internal_writes;

	internal_writes = 0;
	return saved;
}

void
ProjResumeInternalWrites(int saved)
{
	internal_writes = saved;
}

/* what Execute needs to undo */
typedef struct OwnerContext
{
	MemoryContext cxt;
	Oid			userid;
	int			sec_context;
	int			writes;
	int			guc_level;
} OwnerContext;

/*
 * Become role (or the extension's owner) with the pinned search_path, and
 * mark what runs as the extension's own statements.
 */
static void
EnterOwner(OwnerContext *oc, Oid role)
{
	const ProjExtInfo *ext = ProjExtGet(false);

	oc->cxt = CurrentMemoryContext;
	GetUserIdAndSecContext(&oc->userid, &oc->sec_context);
	SetUserIdAndSecContext(OidIsValid(role) ? role : ext->owner,
						   oc->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	oc->guc_level = ProjPinSearchPath();
	oc->writes = internal_writes;
	/* (what runs as a projection's owner is not the extension's own) */
	if (!OidIsValid(role))
		internal_writes = oc->writes + 1;
}

static void
LeaveOwner(OwnerContext *oc)
{
	internal_writes = oc->writes;
	ProjUnpinSearchPath(oc->guc_level);
	SetUserIdAndSecContext(oc->userid, oc->sec_context);
	MemoryContextSwitchTo(oc->cxt);
}

static void
CheckResult(int ret)
{
	if (ret < 0)
		elog(ERROR, "projections statement failed: %s",
			 SPI_result_code_string(ret));
}

int
ProjRunSnapshot(ProjStatement *stmt, Datum *values, const char *nulls,
				Snapshot snapshot, long count)
{
	OwnerContext oc;
	int			ret;

	EnterOwner(&oc, InvalidOid);
	PG_TRY();
	{
		if (stmt->plan == NULL)
		{
			SPIPlanPtr	plan = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);

			if (plan == NULL)
				elog(ERROR, "could not prepare projections statement: %s",
					 SPI_result_code_string(SPI_result));
			if (SPI_keepplan(plan) != 0)
				elog(ERROR, "could not keep projections statement");
			stmt->plan = plan;
		}
		ret = SPI_execute_snapshot(stmt->plan, values, nulls, snapshot,
								   InvalidSnapshot, false, true, count);
	}
	PG_FINALLY();
	{
		internal_writes = oc.writes;
	}
	PG_END_TRY();
	LeaveOwner(&oc);
	CheckResult(ret);
	return ret;
}

int
ProjRun(ProjStatement *stmt, Datum *values, const char *nulls, bool latest,
		long count)
{
	return ProjRunSnapshot(stmt, values, nulls,
						   latest ? GetLatestSnapshot() : InvalidSnapshot, count);
}

/*
 * Prepare and execute a statement built at run time once, as role (or the
 * extension's owner), with a snapshot (InvalidSnapshot: the usual one).
 */
static int
RunOnce(Oid role, const char *sql, int nargs, Oid *argtypes, Datum *values,
		const char *nulls, Snapshot snapshot, long count)
{
	OwnerContext oc;
	SPIPlanPtr	plan;
	int			ret;

	EnterOwner(&oc, role);
	PG_TRY();
	{
		plan = SPI_prepare(sql, nargs, argtypes);
		if (plan == NULL)
			elog(ERROR, "could not prepare projections statement: %s",
				 SPI_result_code_string(SPI_result));
		ret = SPI_execute_snapshot(plan, values, nulls, snapshot, InvalidSnapshot,
								   false, true, count);
		SPI_freeplan(plan);
	}
	PG_FINALLY();
	{
		internal_writes = oc.writes;
	}
	PG_END_TRY();
	LeaveOwner(&oc);
	CheckResult(ret);
	return ret;
}

int
ProjRunDynamic(Oid role, const char *sql, int nargs, Oid *argtypes,
			   Datum *values, const char *nulls, long count)
{
	return RunOnce(role, sql, nargs, argtypes, values, nulls, InvalidSnapshot, count);
}

/*
 * A dynamic statement run with a given snapshot (whose command id is
 * brought up to date, so the transaction's own changes are seen).
 */
int
ProjRunDynamicSnapshot(Oid role, const char *sql, Snapshot snapshot, long count)
{
	return RunOnce(role, sql, 0, NULL, NULL, NULL, snapshot, count);
}

/*
 * Lock a relation, waiting at most timeout_ms (lock_timeout, in a GUC nest
 * level and a subtransaction that end here): a long wait for a strong lock
 * would queue every other session behind it.  Returns false on timeout;
 * other errors propagate.
 */
bool
ProjLockTimeout(Oid relid, int lockmode, int timeout_ms)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool got = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		char		timeout[32];
		int			level = NewGUCNestLevel();

		snprintf(timeout, sizeof(timeout), "%d", timeout_ms);
		(void) set_config_option("lock_timeout", timeout, PGC_SUSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		LockRelationOid(relid, (LOCKMODE) lockmode);
		AtEOXact_GUC(false, level);
		ReleaseCurrentSubTransaction();
		got = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return got;
}

void
ProjRegistryInit(void)
{
	CacheRegisterRelcacheCallback(InvalidateExtInfo, (Datum) 0);
}
