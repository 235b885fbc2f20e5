/*-------------------------------------------------------------------------
 *
 * api.c
 *	  SQL-callable functions that register, change, run and wait for
 *	  projections, and the helpers behind the status view.
 *
 * Every state change takes the projection's applier lock first, so it waits
 * for a batch in progress and no batch starts until it commits.  Only the
 * projection's owner (or a member of that role, or a superuser) may change
 * it.  Names and types passed in are only ever used as parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "projections.h"

PG_FUNCTION_INFO_V1(projections_register);
PG_FUNCTION_INFO_V1(projections_unregister);
PG_FUNCTION_INFO_V1(projections_pause);
PG_FUNCTION_INFO_V1(projections_resume);
PG_FUNCTION_INFO_V1(projections_rebuild);
PG_FUNCTION_INFO_V1(projections_set_mode);
PG_FUNCTION_INFO_V1(projections_run);
PG_FUNCTION_INFO_V1(projections_head);
PG_FUNCTION_INFO_V1(projections_wait);
PG_FUNCTION_INFO_V1(projections_safe_key);
PG_FUNCTION_INFO_V1(projections_worker_status);

/*
 * The projection name argument: present, not empty, at most 63 bytes.
 */
static char *
NameArg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("projection name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("projection name must not be empty")));
	if (strlen(name) > PROJ_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("projection name is too long"),
				 errdetail("A projection name has at most %d bytes.",
						   PROJ_MAX_NAME_LEN)));
	return name;
}

/*
 * A text argument that must be one of two words.
 */
static char *
ChoiceArg(FunctionCallInfo fcinfo, int argno, const char *what,
		  const char *one, const char *other)
{
	char	   *value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(value, one) != 0 && strcmp(value, other) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", what, value),
				 errhint("Valid values are \"%s\" and \"%s\".", one, other)));
	return value;
}

/*
 * A handler takes one projections.events row and returns void; a reset
 * function takes nothing and returns void.  The caller must be allowed to
 * execute it.
 */
static void
CheckFunction(Oid func, const char *what, Oid argtype, Oid caller)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	bool		ok;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(func));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s function with OID %u does not exist", what, func)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->prorettype == VOIDOID &&
		(OidIsValid(argtype) ?
		 (proc->pronargs == 1 && proc->proargtypes.values[0] == argtype) :
		 proc->pronargs == 0);
	ReleaseSysCache(tup);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s function %s has the wrong signature", what,
						format_procedure(func)),
				 OidIsValid(argtype) ?
				 errdetail("A handler takes one argument of type projections.events and returns void.") :
				 errdetail("A reset function takes no arguments and returns void."),
				 OidIsValid(argtype) ?
				 errhint("Declare it as CREATE FUNCTION my_handler(e projections.events) RETURNS void ...") :
				 errhint("Declare it as CREATE FUNCTION my_reset() RETURNS void ...")));
	if (ProjProcedureAclCheck(func, caller, ACL_EXECUTE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(func));
}

/*
 * event_types: NULL, or a one-dimensional array of non-empty strings.
 */
static void
CheckEventTypes(ArrayType *types)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (ARR_NDIM(types) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must be a one-dimensional array")));
	deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must not be empty"),
				 errhint("Pass NULL to receive events of every type.")));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("event_types must not contain nulls")));
		if (VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_types must not contain empty strings")));
	}
}

static void
WarnIfNoWorker(const char *name)
{
	if (!ProjWorkerExpected())
		ereport(WARNING,
				(errmsg("no background worker applies async projections in this server"),
				 errdetail("Projection \"%s\" is applied only when projections.run() is called.",
						   name),
				 errhint("Add projections to shared_preload_libraries and restart, "
						 "and keep projections.enabled on.")));
}

/*
 * Load a projection for a change by the SQL API: it must exist, the caller
 * must own it, and we hold its applier lock.  The caller is connected to SPI.
 */
static ProjectionDef *
LoadForChange(const char *name)
{
	ProjectionDef *def = ProjLoadOrError(name);

	ProjCheckOwner(def);
	(void) ProjLockProjection(name, true);
	ProjNoteCatalogChange();
	return ProjLoadOrError(name);
}

static void
SetState(const char *name, const char *state)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(state);
	ProjExecuteSql("UPDATE projections.projection SET state = $2 WHERE name = $1",
				   2, (Oid[]) {TEXTOID, TEXTOID}, args, NULL);
}

/*
 * Hand a projection that may have events to apply to whoever applies it:
 * an inline one is brought up to date and switched on here, in the calling
 * transaction; an async one is the worker's, woken when this transaction
 * commits.
 */
static void
ApplyNext(const char *name, bool is_inline)
{
	bool		more;

	if (is_inline)
		(void) ProjApply(name, PROJ_CALLER_RUN, 0, &more, NULL);
	else
		WarnIfNoWorker(name);
}

/*
 * projections.register(name, handler, event_types, mode, reset, on_error)
 */
Datum
projections_register(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	char	   *mode = ChoiceArg(fcinfo, 3, "mode", "async", "inline");
	char	   *on_error = ChoiceArg(fcinfo, 5, "on_error", "pause", "skip");
	const ProjExtInfo *ext = ProjExtGet(false);
	Oid			caller = GetUserId();
	Oid			handler;
	Oid			reset = PG_ARGISNULL(4) ? InvalidOid : PG_GETARG_OID(4);
	Datum		args[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("handler must not be null")));
	handler = PG_GETARG_OID(1);
	CheckFunction(handler, "handler", ext->events_type, caller);
	if (OidIsValid(reset))
		CheckFunction(reset, "reset", InvalidOid, caller);
	if (!PG_ARGISNULL(2))
		CheckEventTypes(PG_GETARG_ARRAYTYPE_P(2));

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(format_procedure_qualified(handler));
	if (OidIsValid(reset))
		args[2] = CStringGetTextDatum(format_procedure_qualified(reset));
	else
		nulls[2] = 'n';
	if (PG_ARGISNULL(2))
		nulls[3] = 'n';
	else
		args[3] = PG_GETARG_DATUM(2);
	args[4] = CStringGetTextDatum(mode);
	args[5] = CStringGetTextDatum(on_error);
	args[6] = ObjectIdGetDatum(caller);
	args[7] = CStringGetTextDatum(GetConfigOption("search_path", false, false));

	SPI_connect();
	(void) ProjLockProjection(name, true);
	ProjNoteCatalogChange();
	ProjExecuteSql("INSERT INTO projections.projection (name, handler, reset,"
				   " event_types, mode, on_error, owner, search_path)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
				   " ON CONFLICT (name) DO NOTHING",
				   8, (Oid[]) {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID,
					   TEXTOID, REGROLEOID, TEXTOID},
				   args, nulls);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("projection \"%s\" already exists", name),
				 errhint("Choose another name, or unregister the existing projection first.")));

	ApplyNext(name, strcmp(mode, "inline") == 0);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * projections.unregister(name)
 */
Datum
projections_unregister(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	ProjectionDef *def;
	Datum		arg = CStringGetTextDatum(name);

	SPI_connect();
	def = LoadForChange(name);
	if (def->inline_active)
	{
		const ProjExtInfo *ext = ProjExtGet(false);

		LockRelationOid(ext->events_relid, ShareRowExclusiveLock);
		CacheInvalidateRelcacheByRelid(ext->events_relid);
	}
	ProjExecuteSql("DELETE FROM projections.failed_event WHERE projection = $1",
				   1, (Oid[]) {TEXTOID}, &arg, NULL);
	ProjExecuteSql("DELETE FROM projections.projection WHERE name = $1",
				   1, (Oid[]) {TEXTOID}, &arg, NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * projections.pause(name)
 */
Datum
projections_pause(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	ProjectionDef *def;

	SPI_connect();
	def = LoadForChange(name);
	if (def->state == 'p')
		ereport(NOTICE,
				(errmsg("projection \"%s\" is already paused", name)));
	else
	{
		if (def->inline_active)
			ProjDeactivateInline(def);
		SetState(name, "paused");
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * projections.resume(name): also retries a projection paused by an error.
 */
Datum
projections_resume(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	ProjectionDef *def;

	SPI_connect();
	def = LoadForChange(name);
	if (def->state == 'a')
		ereport(NOTICE,
				(errmsg("projection \"%s\" is not paused", name)));
	else
	{
		SetState(name, "active");
		ApplyNext(name, def->is_inline);
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * projections.rebuild(name): empty the read model through the reset
 * function and start again from the first event.  An async projection is
 * replayed by the worker; an inline one is replayed here, while appends
 * wait, so that its read model is never seen half-built.
 */
Datum
projections_rebuild(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	ProjectionDef *def;
	Oid			reset;
	ProjCall	call;
	Datum		arg = CStringGetTextDatum(name);

	SPI_connect();
	def = LoadForChange(name);
	if (def->reset == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("projection \"%s\" has no reset function", name),
				 errdetail("rebuild() empties the read model through the reset function before replaying."),
				 errhint("Unregister the projection and register it again with reset => 'my_reset()'.")));
	reset = ProjResolveFunction(def->reset);
	if (!OidIsValid(reset))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("reset function %s of projection \"%s\" does not exist",
						def->reset, name)));
	if (ProjProcedureAclCheck(reset, def->owner, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not execute reset function %s",
						GetUserNameFromId(def->owner, false), def->reset)));

	if (def->inline_active)
		ProjDeactivateInline(def);

	/* empty the read model, as the projection's owner */
	ProjCallPrepare(&call, reset, def->owner, def->search_path, name,
					CurrentMemoryContext);
	ProjCallEnter(&call);
	{
		LOCAL_FCINFO(resetinfo, 0);

		InitFunctionCallInfoData(*resetinfo, &call.flinfo, 0, InvalidOid, NULL, NULL);
		(void) FunctionCallInvoke(resetinfo);
	}
	ProjCallLeave(&call);
	CommandCounterIncrement();

	ProjExecuteSql("UPDATE projections.projection SET checkpoint_key = 0,"
				   " checkpoint_position = 0, skip_position = 0, position = 0,"
				   " events_applied = 0, events_skipped = 0, rebuilding = true,"
				   " inline_active = false, state = 'active', last_error = NULL,"
				   " error_sqlstate = NULL, error_position = NULL, error_at = NULL,"
				   " last_applied_at = NULL WHERE name = $1",
				   1, (Oid[]) {TEXTOID}, &arg, NULL);
	ProjExecuteSql("DELETE FROM projections.failed_event WHERE projection = $1",
				   1, (Oid[]) {TEXTOID}, &arg, NULL);

	ApplyNext(name, def->is_inline);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * projections.set_mode(name, mode): switch between async and inline without
 * losing or repeating an event.
 */
Datum
projections_set_mode(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	char	   *mode = ChoiceArg(fcinfo, 1, "mode", "async", "inline");
	bool		to_inline = strcmp(mode, "inline") == 0;
	ProjectionDef *def;
	Datum		args[2];

	SPI_connect();
	def = LoadForChange(name);
	if (def->is_inline == to_inline)
	{
		ereport(NOTICE,
				(errmsg("projection \"%s\" is already %s", name, mode)));
		SPI_finish();
		PG_RETURN_VOID();
	}
	if (!to_inline && def->inline_active)
		ProjDeactivateInline(def);
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(mode);
	ProjExecuteSql("UPDATE projections.projection SET mode = $2 WHERE name = $1",
				   2, (Oid[]) {TEXTOID, TEXTOID}, args, NULL);
	ApplyNext(name, to_inline);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * projections.run(name, max_events): apply pending events now, in this
 * session, through the worker's code path.
 */
Datum
projections_run(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	int64		max_events = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	ProjectionDef *def;
	bool		more;

	if (!PG_ARGISNULL(1) && max_events < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be null or at least 0")));
	SPI_connect();
	def = ProjLoadOrError(name);
	ProjCheckOwner(def);
	SPI_finish();

	if (def->state != 'a')
	{
		ereport(NOTICE,
				(errmsg("projection \"%s\" is %s; nothing applied", name,
						def->state == 'p' ? "paused" : "failed"),
				 errhint("Call projections.resume('%s') first.", name)));
		PG_RETURN_INT64(0);
	}
	if (!PG_ARGISNULL(1) && max_events == 0)
		PG_RETURN_INT64(0);
	PG_RETURN_INT64(ProjApply(name, PROJ_CALLER_RUN, max_events, &more, NULL));
}

/*
 * projections.head(): the highest global position that is safe to read.
 */
Datum
projections_head(PG_FUNCTION_ARGS)
{
	Datum		arg;
	int64		head = 0;

	(void) ProjExtGet(false);
	SPI_connect();
	arg = Int64GetDatum(ProjSafeKey(GetActiveSnapshot()));
	ProjExecute(PLAN_HEAD, &arg, NULL, false, 1);
	if (SPI_processed > 0)
	{
		bool		isnull;

		head = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	PG_RETURN_INT64(head);
}

static int64
IntervalToMs(Interval *iv)
{
	int64		ms = iv->time / 1000;

	ms += ((int64) iv->day + (int64) iv->month * DAYS_PER_MONTH) * (int64) 86400000;
	return Max(ms, 0);
}

/*
 * Read (key, position) from the first row of the last result.
 */
static bool
KeyPair(int64 *key, int64 *pos)
{
	bool		isnull;

	if (SPI_processed == 0)
		return false;
	*key = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*pos = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

typedef enum WaitOutcome
{
	WAIT_REACHED,				/* the checkpoint is there */
	WAIT_NOT_YET,
	WAIT_STOPPED				/* paused or failed: it will not get there */
} WaitOutcome;

/*
 * Has the projection's committed checkpoint reached (key, pos)?  An active
 * inline projection always has.  The row is read with the latest snapshot:
 * only what has committed counts.
 */
static WaitOutcome
Reached(const char *name, int64 key, int64 pos)
{
	Datum		arg = CStringGetTextDatum(name);
	int64		ck;
	int64		cpos;
	bool		isnull;
	char	   *state;

	ProjExecute(PLAN_READ_CHECKPOINT, &arg, NULL, true, 1);
	if (!KeyPair(&ck, &cpos))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("projection \"%s\" was unregistered while waiting", name)));
	state = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (strcmp(state, "active") != 0)
		return WAIT_STOPPED;
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)))
		return WAIT_REACHED;
	return (ck > key || (ck == key && cpos >= pos)) ? WAIT_REACHED : WAIT_NOT_YET;
}

/*
 * projections.wait(name, up_to, timeout): block until the projection has
 * applied every committed event at or below position up_to (NULL: every
 * event that is safe to read now).  Returns false on timeout, and at once
 * when the projection is paused or failed.
 */
Datum
projections_wait(PG_FUNCTION_ARGS)
{
	char	   *name = NameArg(fcinfo, 0);
	int64		timeout_ms;
	TimestampTz deadline;
	ProjectionDef *def;
	int64		key;
	int64		pos;
	bool		result = false;
	ProjDbSlot *slot;
	FullTransactionId own;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("projections.wait() cannot be used in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Such a transaction would not see the read model move."),
				 errhint("Call it in a READ COMMITTED transaction.")));
	timeout_ms = IntervalToMs(PG_GETARG_INTERVAL_P(2));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	SPI_connect();
	def = ProjLoadOrError(name);
	if (def->inline_active)
	{
		SPI_finish();
		PG_RETURN_BOOL(true);
	}
	/* the last event the caller is waiting for, in the projection's order */
	if (PG_ARGISNULL(1))
	{
		Datum		arg = Int64GetDatum(ProjSafeKey(GetLatestSnapshot()));

		ProjExecute(PLAN_LAST_SAFE_EVENT, &arg, NULL, true, 1);
	}
	else
	{
		Datum		args[3];

		args[0] = Int64GetDatum(def->checkpoint_key);
		args[1] = Int64GetDatum(def->checkpoint_position);
		args[2] = PG_GETARG_DATUM(1);
		ProjExecute(PLAN_WAIT_TARGET, args, NULL, true, 1);
	}
	if (!KeyPair(&key, &pos))
	{
		SPI_finish();
		PG_RETURN_BOOL(true);
	}

	own = GetTopFullTransactionIdIfAny();
	if (FullTransactionIdIsValid(own) &&
		key >= (int64) U64FromFullTransactionId(own) + ProjKeyOffset())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("projections.wait() would wait for the current transaction itself"),
				 errdetail("Events appended after this transaction took its transaction id "
						   "cannot be applied before it commits."),
				 errhint("Commit first, then call projections.wait().")));

	switch (Reached(name, key, pos))
	{
		case WAIT_REACHED:
			SPI_finish();
			PG_RETURN_BOOL(true);
		case WAIT_STOPPED:
			SPI_finish();
			PG_RETURN_BOOL(false);
		case WAIT_NOT_YET:
			break;
	}
	if (!ProjWorkerExpected())
		ereport(WARNING,
				(errmsg("no background worker applies async projections in this server"),
				 errdetail("projections.wait() returns true only if another session calls projections.run()."),
				 errhint("Add projections to shared_preload_libraries and restart, "
						 "and keep projections.enabled on.")));

	slot = ProjSlotForDatabase(MyDatabaseId);
	if (slot != NULL)
		ConditionVariablePrepareToSleep(&slot->progress);
	for (;;)
	{
		long		wait_ms;

		WaitOutcome outcome;

		CHECK_FOR_INTERRUPTS();
		outcome = Reached(name, key, pos);
		if (outcome != WAIT_NOT_YET)
		{
			result = outcome == WAIT_REACHED;
			break;
		}
		wait_ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (wait_ms <= 0)
			break;
		if (slot != NULL)
			(void) ConditionVariableTimedSleep(&slot->progress, Min(wait_ms, 100),
											   PG_WAIT_EXTENSION);
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(wait_ms, 10), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
	if (slot != NULL)
		ConditionVariableCancelSleep();
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/*
 * projections._safe_key(): events with a smaller ordering key are safe to
 * read (used by the status view).
 */
Datum
projections_safe_key(PG_FUNCTION_ARGS)
{
	(void) ProjExtGet(false);
	PG_RETURN_INT64(ProjSafeKey(GetActiveSnapshot()));
}

/*
 * projections._worker_status(): this database's worker, for the status view.
 */
Datum
projections_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {true, false};
	ProjDbSlot *slot;
	const char *state;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	slot = ProjSlotForDatabase(MyDatabaseId);
	if (ProjSharedState == NULL)
		state = "not in shared_preload_libraries";
	else if (!proj_enabled)
		state = "disabled";
	else if (slot == NULL)
		state = "not started";
	else
	{
		pid_t		pid = slot->pid;

		state = ProjWorkerStateName(slot->state);
		if (pid != 0)
		{
			values[0] = Int32GetDatum(pid);
			nulls[0] = false;
		}
	}
	values[1] = CStringGetTextDatum(state);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
