/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  The batch apply engine: the one code path that applies events to a
 *	  projection and moves its checkpoint in the same transaction.
 *
 * The background worker calls ProjApply() once per batch, each in its own
 * transaction; projections.run() calls it in the caller's transaction.
 *
 * A call locks the projection (exactly one applier at a time), reads its
 * catalog row with a snapshot that sees every committed change, and fetches
 * the events after its checkpoint, below the safe key, in (ordering_key,
 * global_position) order, filtered by event type in the query.  The handler
 * is called once per event, as the projection's owner, inside one
 * subtransaction for the whole call.  When the handler fails, the
 * subtransaction is rolled back and the events before the failing one are
 * applied again in a fresh one; the failing event then either pauses the
 * projection ('pause') or is recorded in failed_events and passed over
 * ('skip').  So the happy path costs one subtransaction, and each failure
 * two more.
 *
 * An inline projection that is not active yet (just registered, resumed or
 * rebuilt) is caught up here like an async one; once drained, the events
 * table is locked against appends, the few remaining events are applied,
 * and the projection is switched to inline in the same transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/syscache.h"

#include "compat.h"
#include "projections.h"

/* how often a long catch-up plans its statements again */
#define PLAN_RESET_INTERVAL_MS	10000

static TimestampTz last_plan_reset = 0;

/* an event whose handler call failed */
typedef struct FailedEvent
{
	ErrorData  *edata;
	bool		in_handler;		/* the error came from the handler */
	int64		index;			/* events applied before it in the attempt */
	int64		key;
	int64		position;
	char	   *stream_id;
	int32		stream_version;
	char	   *event_type;
} FailedEvent;

typedef struct ApplyState
{
	ProjectionDef *def;
	Oid			handler;
	ProjCall	call;
	MemoryContext cxt;			/* lives for the whole call */
	MemoryContext event_cxt;	/* reset after every event */
	int64		horizon;		/* consume keys below this */
	bool		latest;			/* read events with the latest snapshot */

	/* progress, saved to the catalog at the end */
	int64		key;
	int64		pos;
	int64		position;
	int64		applied;
	int64		skipped;
	bool		drained;		/* the last fetch came back short */
	bool		failed;			/* paused by a handler error */

	/* the event being applied, for error reports */
	bool		in_handler;
	HeapTuple	cur_tuple;
	TupleDesc	cur_desc;
} ApplyState;

/*
 * Errors that say nothing about the event: the batch is retried later, the
 * event is neither skipped nor blamed.
 */
static bool
ProjErrorIsTransient(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_TRANSACTION_ROLLBACK:	/* 40: serialization, deadlock */
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53 */
		case ERRCODE_PROGRAM_LIMIT_EXCEEDED:	/* 54 */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57: cancel, shutdown */
		case ERRCODE_SYSTEM_ERROR:	/* 58 */
			return true;
		default:
			return sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
	}
}

/*
 * Look up a handler for repeated calls.
 */
void
ProjCallPrepare(ProjCall *call, Oid func, Oid owner, const char *search_path,
				const char *projection, MemoryContext cxt)
{
	fmgr_info_cxt(func, &call->flinfo, cxt);
	call->owner = owner;
	call->search_path = search_path;
	call->projection = projection;
}

/*
 * Become the projection's owner, in a security-restricted operation (the
 * handler cannot SET ROLE back to the caller), with the search_path the
 * projection was registered with.
 */
void
ProjCallEnter(ProjCall *call)
{
	GetUserIdAndSecContext(&call->saved.userid, &call->saved.sec_context);
	SetUserIdAndSecContext(call->owner,
						   call->saved.sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	call->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", call->search_path,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
ProjCallLeave(ProjCall *call)
{
	AtEOXact_GUC(true, call->guc_level);
	SetUserIdAndSecContext(call->saved.userid, call->saved.sec_context);
}

/*
 * Call the handler with one event (a projections.events row).
 */
void
ProjCallEvent(ProjCall *call, Datum event)
{
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, &call->flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = event;
	fcinfo->args[0].isnull = false;
	(void) FunctionCallInvoke(fcinfo);
}

/*
 * Apply up to limit events after the state's frontier.  Errors propagate;
 * the caller runs this inside a subtransaction.
 */
static int64
ApplyRange(ApplyState *st, int64 limit)
{
	int64		done = 0;

	st->drained = false;
	while (done < limit)
	{
		int64		chunk = Min((int64) proj_batch_size, limit - done);
		Datum		args[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		SPITupleTable *tuptable;
		uint64		n;
		uint64		i;

		args[0] = Int64GetDatum(st->key);
		args[1] = Int64GetDatum(st->pos);
		args[2] = Int64GetDatum(st->horizon);
		args[3] = Int64GetDatum(st->def->skip_position);
		if (st->def->has_filter)
			args[4] = st->def->event_types;
		else
			nulls[4] = 'n';
		args[5] = Int64GetDatum(chunk);
		ProjExecute(PLAN_FETCH_EVENTS, args, nulls, st->latest, 0);
		tuptable = SPI_tuptable;
		n = SPI_processed;

		/*
		 * Plan the handler's statements afresh now and then: a read model
		 * that was empty when they were planned would otherwise keep plans
		 * that scan it whole, and catching up would slow down as it grows.
		 */
		if (TimestampDifferenceExceeds(last_plan_reset, GetCurrentTimestamp(),
									   PLAN_RESET_INTERVAL_MS))
		{
			ResetPlanCache();
			last_plan_reset = GetCurrentTimestamp();
		}

		/* the fetch ran as the extension's owner, the handler runs as the projection's */
		ProjCallEnter(&st->call);
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = tuptable->vals[i];
			bool		isnull;
			int64		key = DatumGetInt64(SPI_getbinval(tup, tuptable->tupdesc, 1, &isnull));
			int64		pos = DatumGetInt64(SPI_getbinval(tup, tuptable->tupdesc, 2, &isnull));
			Datum		event = SPI_getbinval(tup, tuptable->tupdesc, 6, &isnull);
			MemoryContext oldcxt;

			CHECK_FOR_INTERRUPTS();
			st->cur_tuple = tup;
			st->cur_desc = tuptable->tupdesc;
			oldcxt = MemoryContextSwitchTo(st->event_cxt);
			st->in_handler = true;
			ProjCallEvent(&st->call, event);
			st->in_handler = false;
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(st->event_cxt);
			CommandCounterIncrement();

			st->key = key;
			st->pos = pos;
			st->position = pos;
			st->applied++;
			done++;
		}
		ProjCallLeave(&st->call);
		st->cur_tuple = NULL;
		SPI_freetuptable(tuptable);
		if ((int64) n < chunk)
		{
			st->drained = true;
			break;
		}
	}
	return done;
}

/*
 * Run ApplyRange in a subtransaction.  On error, roll it back, rewind the
 * state, and describe the failure.  Returns true on success.
 */
static bool
TryApply(ApplyState *st, int64 limit, FailedEvent *fail)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	int64		key = st->key;
	int64		pos = st->pos;
	int64		position = st->position;
	int64		applied = st->applied;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		(void) ApplyRange(st, limit);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(st->cxt);
		memset(fail, 0, sizeof(*fail));
		fail->edata = CopyErrorData();
		FlushErrorState();
		fail->in_handler = st->in_handler;
		fail->index = st->applied - applied;
		if (st->in_handler && st->cur_tuple != NULL)
		{
			bool		isnull;
			HeapTuple	tup = st->cur_tuple;
			TupleDesc	desc = st->cur_desc;

			fail->key = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			fail->position = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			fail->stream_id = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
			fail->stream_version = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
			fail->event_type = TextDatumGetCString(SPI_getbinval(tup, desc, 5, &isnull));
		}
		st->in_handler = false;
		st->cur_tuple = NULL;

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		st->key = key;
		st->pos = pos;
		st->position = position;
		st->applied = applied;
		st->drained = false;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Record a handler error on the projection's row: with pause, the row goes
 * to state 'failed'; with skip, only the error columns change.
 */
static void
RecordError(const char *name, const char *message, int sqlerrcode,
			int64 position, bool keep_state)
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
	args[4] = BoolGetDatum(keep_state);
	ProjExecute(PLAN_RECORD_FAILURE, args, nulls, false, 0);
}

/*
 * Put a failing event in failed_events and move past it.
 */
static void
RecordSkipped(ApplyState *st, FailedEvent *fail)
{
	Datum		args[7];

	args[0] = CStringGetTextDatum(st->def->name);
	args[1] = Int64GetDatum(fail->position);
	args[2] = CStringGetTextDatum(fail->stream_id);
	args[3] = Int32GetDatum(fail->stream_version);
	args[4] = CStringGetTextDatum(fail->event_type);
	args[5] = CStringGetTextDatum(fail->edata->message);
	args[6] = CStringGetTextDatum(unpack_sql_state(fail->edata->sqlerrcode));
	ProjExecute(PLAN_RECORD_SKIPPED, args, NULL, false, 0);
	RecordError(st->def->name, fail->edata->message, fail->edata->sqlerrcode,
				fail->position, true);

	st->key = fail->key;
	st->pos = fail->position;
	st->skipped++;
}

/*
 * Apply up to limit events, handling handler errors by the projection's
 * policy.  Errors that are not the handler's, or are transient, propagate.
 */
static void
ApplyWithPolicy(ApplyState *st, int64 limit)
{
	int64		remaining = limit;

	while (remaining > 0)
	{
		FailedEvent fail;
		int64		before = st->applied;

		if (TryApply(st, remaining, &fail))
			break;
		if (!fail.in_handler || ProjErrorIsTransient(fail.edata->sqlerrcode))
			ReThrowError(fail.edata);

		/* apply the events before the failing one again */
		while (fail.index > 0)
		{
			FailedEvent again;

			if (TryApply(st, fail.index, &again))
				break;
			if (!again.in_handler || ProjErrorIsTransient(again.edata->sqlerrcode))
				ReThrowError(again.edata);
			fail = again;
		}
		remaining -= st->applied - before;

		if (st->def->skip_on_error)
		{
			RecordSkipped(st, &fail);
			remaining--;
			st->drained = false;
		}
		else
		{
			RecordError(st->def->name, fail.edata->message,
						fail.edata->sqlerrcode, fail.position, false);
			st->failed = true;
			ereport(LOG,
					(errmsg("projection \"%s\" paused at event " INT64_FORMAT
							" (stream \"%s\" version %d, type %s): %s",
							st->def->name, fail.position, fail.stream_id,
							fail.stream_version, fail.event_type,
							fail.edata->message),
					 errhint("Fix the handler or the data, then call "
							 "projections.resume('%s').", st->def->name)));
			break;
		}
	}
}

/*
 * Lock the events table against appends, to switch a projection between
 * inline and async.  Without wait, give up after
 * projections.inline_switch_timeout (the worker tries again later) rather
 * than queue every appender behind a long wait.
 */
static bool
LockEventsForSwitch(bool wait)
{
	Oid			relid = ProjExtGet(false)->events_relid;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool got = false;

	if (wait)
	{
		LockRelationOid(relid, ShareRowExclusiveLock);
		return true;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		char		timeout[32];

		snprintf(timeout, sizeof(timeout), "%d", proj_inline_switch_timeout_ms);
		(void) set_config_option("lock_timeout", timeout, PGC_SUSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
		LockRelationOid(relid, ShareRowExclusiveLock);
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
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return got;
}

/*
 * Switch an inline projection off: lock out appends, then set the
 * checkpoint so that the async path starts exactly after what inline
 * applied.  Every event committed so far has a position at or below the
 * current maximum and was applied; every event committed later has a key
 * at or above the current safe key.  So the frontier is "everything below
 * the safe key" plus "nothing at or below this position".
 */
void
ProjDeactivateInline(ProjectionDef *def)
{
	const ProjExtInfo *ext = ProjExtGet(false);
	Datum		args[5];
	bool		isnull;
	int64		max_position = 0;

	LockRelationOid(ext->events_relid, ShareRowExclusiveLock);
	ProjExecute(PLAN_MAX_POSITION, NULL, NULL, true, 1);
	if (SPI_processed > 0)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			max_position = DatumGetInt64(d);
	}
	args[0] = CStringGetTextDatum(def->name);
	args[1] = Int64GetDatum(ProjSafeKey(GetLatestSnapshot()) - 1);
	args[2] = Int64GetDatum(PG_INT64_MAX);
	args[3] = Int64GetDatum(max_position);
	args[4] = Int64GetDatum(Max(max_position, def->position));
	ProjExecuteSql("UPDATE projections.projection SET inline_active = false,"
				   " checkpoint_key = $2, checkpoint_position = $3,"
				   " skip_position = $4, position = $5 WHERE name = $1",
				   5, (Oid[]) {TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID},
				   args, NULL);
	def->inline_active = false;
	def->checkpoint_key = DatumGetInt64(args[1]);
	def->checkpoint_position = PG_INT64_MAX;
	def->skip_position = max_position;
	CacheInvalidateRelcacheByRelid(ext->events_relid);
}

/*
 * Send NOTIFY projections with the projection's new position.
 */
static void
NotifyProgress(const char *name, int64 position, int64 applied)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"projection\": ");
	escape_json(&buf, name);
	appendStringInfo(&buf, ", \"position\": " INT64_FORMAT
					 ", \"applied\": " INT64_FORMAT "}", position, applied);
	Async_Notify(PROJ_NOTIFY_CHANNEL, buf.data);
	pfree(buf.data);
}

/*
 * True if there are events between the frontier and the horizon that the
 * fetch did not return (filtered out): the frontier is worth saving.
 */
static bool
FrontierCanMove(ApplyState *st)
{
	Datum		args[3];

	args[0] = Int64GetDatum(st->key);
	args[1] = Int64GetDatum(st->pos);
	args[2] = Int64GetDatum(st->horizon);
	ProjExecute(PLAN_PROBE_EVENTS, args, NULL, st->latest, 1);
	return SPI_processed > 0;
}

/*
 * Check what the handler call needs; on a problem, record it as the
 * projection's error and return false.
 */
static bool
CheckHandler(ApplyState *st)
{
	ProjectionDef *def = st->def;
	char	   *problem = NULL;
	int			code = 0;

	st->handler = ProjResolveFunction(def->handler);
	if (!OidIsValid(st->handler))
	{
		problem = psprintf("handler function %s does not exist", def->handler);
		code = ERRCODE_UNDEFINED_FUNCTION;
	}
	else if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(def->owner)))
	{
		problem = psprintf("the role that owns projection \"%s\" no longer exists",
						   def->name);
		code = ERRCODE_UNDEFINED_OBJECT;
	}
	else if (ProjProcedureAclCheck(st->handler, def->owner, ACL_EXECUTE) != ACLCHECK_OK)
	{
		problem = psprintf("role \"%s\" may not execute handler function %s",
						   GetUserNameFromId(def->owner, false), def->handler);
		code = ERRCODE_INSUFFICIENT_PRIVILEGE;
	}
	if (problem == NULL)
		return true;

	RecordError(def->name, problem, code, 0, false);
	ereport(LOG,
			(errmsg("projection \"%s\" paused: %s", def->name, problem)));
	return false;
}

/*
 * Apply pending events of one projection in the current transaction.
 *
 * The worker passes PROJ_CALLER_WORKER: one batch of projections.batch_size
 * events, and nothing at all if another session is applying the projection.
 * run() passes PROJ_CALLER_RUN: wait for the projection, apply up to
 * max_events (all, if 0 or less).  *more is set when events may remain;
 * *blocked (if asked for) when everything safe was applied but committed
 * events wait behind the safe key.  Returns the number of events applied.
 * The caller has an active snapshot.
 */
int64
ProjApply(const char *name, ProjApplyCaller caller, int64 max_events, bool *more,
		  bool *blocked)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	ProjectionDef def;
	ApplyState	st;
	int64		applied = 0;
	bool		save;
	bool		activated = false;

	*more = false;
	if (blocked)
		*blocked = false;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "projections apply",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	SPI_connect();
	MemoryContextSwitchTo(cxt);

	if (!ProjLockProjection(name, caller == PROJ_CALLER_RUN))
		goto done;
	if (!ProjLoad(name, &def))
	{
		if (caller == PROJ_CALLER_RUN)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("projection \"%s\" does not exist", name)));
		goto done;
	}
	if (def.state != 'a' || def.inline_active)
		goto done;

	memset(&st, 0, sizeof(st));
	st.def = &def;
	st.cxt = cxt;
	st.event_cxt = AllocSetContextCreate(cxt, "projections event",
										 ALLOCSET_DEFAULT_SIZES);
	if (!CheckHandler(&st))
		goto done;
	ProjCallPrepare(&st.call, st.handler, def.owner, def.search_path, def.name, cxt);
	st.key = def.checkpoint_key;
	st.pos = def.checkpoint_position;
	st.position = def.position;
	st.horizon = ProjSafeKey(GetActiveSnapshot());

	ApplyWithPolicy(&st, caller == PROJ_CALLER_WORKER ? proj_batch_size :
					(max_events > 0 ? max_events : PG_INT64_MAX));

	/* every event below the horizon was seen: the frontier is the horizon */
	save = st.applied > 0 || st.skipped > 0;
	if (st.drained && !st.failed &&
		(st.key < st.horizon - 1 || (st.key == st.horizon - 1 && st.pos < PG_INT64_MAX)))
	{
		if (save || FrontierCanMove(&st))
		{
			st.key = st.horizon - 1;
			st.pos = PG_INT64_MAX;
			save = true;
		}
	}
	if (st.drained && !st.failed && def.rebuilding)
	{
		def.rebuilding = false;
		save = true;
	}

	/* an inline projection that has caught up goes inline now */
	if (st.drained && !st.failed && def.is_inline &&
		LockEventsForSwitch(caller == PROJ_CALLER_RUN))
	{
		st.horizon = PG_INT64_MAX;
		st.latest = true;
		ApplyWithPolicy(&st, PG_INT64_MAX);
		if (!st.failed)
		{
			activated = true;
			save = true;
		}
	}

	if (save)
	{
		Datum		args[8];

		args[0] = CStringGetTextDatum(def.name);
		args[1] = Int64GetDatum(st.key);
		args[2] = Int64GetDatum(st.pos);
		args[3] = Int64GetDatum(st.position);
		args[4] = Int64GetDatum(st.applied);
		args[5] = Int64GetDatum(st.skipped);
		args[6] = BoolGetDatum(def.rebuilding);
		args[7] = BoolGetDatum(activated);
		ProjExecute(PLAN_SAVE_PROGRESS, args, NULL, false, 0);
		if (activated)
			CacheInvalidateRelcacheByRelid(ProjExtGet(false)->events_relid);
		if (st.applied > 0 || st.skipped > 0 || activated)
			NotifyProgress(def.name, st.position, st.applied);
		ProjNoteProgress();
	}
	applied = st.applied;
	*more = !st.drained && !st.failed;

	/* drained, but committed events wait at or above the safe key? */
	if (blocked && st.drained && !st.failed && !activated)
	{
		bool		isnull;
		Datum		max_key;

		ProjExecute(PLAN_MAX_EVENT_KEY, NULL, NULL, false, 1);
		max_key = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		*blocked = !isnull && DatumGetInt64(max_key) >= st.horizon;
	}

done:
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return applied;
}
