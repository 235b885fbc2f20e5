/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  The apply engine: the one code path that applies events to a model
 *	  and moves its checkpoint in the same transaction.
 *
 * The worker calls ProjApply() once per batch, each in its own
 * transaction; run() calls it in the caller's transaction.  A call locks
 * the model (exactly one applier at a time), reads the projection's row
 * with a snapshot that sees every committed change, and fetches the events
 * after the model's checkpoint, below the safe key, in (ordering_key,
 * global_position) order, filtered by event type in the query.
 *
 * A per-event handler is called once per event; a batch handler (one
 * argument of type projections.events[]) once per fetched chunk, with the
 * chunk's events in the same order.  Every call goes through handler.c,
 * which runs it as the projection's owner and ends whatever it changed.
 *
 * The whole call runs in one subtransaction.  When the handler fails, the
 * subtransaction is rolled back and the failing event is found: for a
 * per-event handler it is known; for a batch handler the failing call's
 * events are applied again as smaller arrays (halves, in subtransactions of
 * their own) until one event is left.  The events before it are applied,
 * and the failing event then either pauses the projection ('pause') or is
 * recorded in failed_events and passed over ('skip').  So the happy path
 * costs one subtransaction, and each failure a few more.  Errors that say
 * nothing about the event (handler.c: ProjErrorIsTransient) propagate: the
 * worker retries the batch.
 *
 * The same engine builds the shadow model of an online rebuild (target
 * PROJ_TARGET_BUILD: the handler runs with the shadow schema first in its
 * search_path, and the build's own checkpoint moves), and the scratch model
 * of verify().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "settings.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "apply.h"
#include "catalog.h"
#include "handler.h"
#include "inline.h"
#include "keys.h"
#include "registry.h"
#include "shmem.h"

/* the columns of a fetched event */
enum
{
	FETCH_KEY = 1, FETCH_POSITION, FETCH_STREAM_ID, FETCH_STREAM_VERSION,
	FETCH_EVENT_TYPE, FETCH_EVENT
};

#define FETCH_COLUMNS \
	"SELECT e.ordering_key, e.global_position, e.stream_id, e.stream_version," \
	" e.event_type, e FROM projections.events e" \
	" WHERE (e.ordering_key, e.global_position) > ($1, $2)" \
	" AND e.ordering_key < $3 AND e.global_position > $4" \
	" AND ($5::text[] IS NULL OR e.event_type = ANY ($5))"

static ProjStatement fetch_stmt = {
	FETCH_COLUMNS
	" ORDER BY e.ordering_key, e.global_position LIMIT $6",
	6, {INT8OID, INT8OID, INT8OID, INT8OID, TEXTARRAYOID, INT8OID}
};

/* (verify: only up to a frontier) */
static ProjStatement fetch_upto_stmt = {
	FETCH_COLUMNS
	" AND (e.ordering_key, e.global_position) <= ($7, $8)"
	" ORDER BY e.ordering_key, e.global_position LIMIT $6",
	8, {INT8OID, INT8OID, INT8OID, INT8OID, TEXTARRAYOID, INT8OID, INT8OID, INT8OID}
};

static ProjStatement probe_stmt = {
	"SELECT 1 FROM projections.events e"
	" WHERE (e.ordering_key, e.global_position) > ($1, $2)"
	" AND e.ordering_key < $3"
	" ORDER BY e.ordering_key, e.global_position LIMIT 1",
	3, {INT8OID, INT8OID, INT8OID}
};

static ProjStatement max_event_key_stmt = {
	"SELECT max(e.ordering_key) FROM projections.events e", 0
};

/* a handler call that failed */
typedef struct FailedEvent
{
	ErrorData  *edata;
	bool		in_handler;		/* the error came from the handler */
	bool		timed_out;		/* projections.handler_timeout stopped it */
	bool		escaped;		/* a shadow model's handler wrote elsewhere */
	int64		index;			/* events applied before the call, in the attempt */
	int64		ncall;			/* events passed to the failing call */
	/* the failing event (a batch call's first event) */
	int64		key;
	int64		position;
	char	   *stream_id;
	int32		stream_version;
	char	   *event_type;
} FailedEvent;

typedef struct ApplyState
{
	ProjectionDef *def;
	ProjTarget	target;
	bool		record;			/* errors and skipped events go to the catalog */
	ProjCall	call;
	Oid			events_type;
	int16		events_typlen;
	bool		events_typbyval;
	char		events_typalign;
	MemoryContext cxt;			/* lives for the whole call */
	MemoryContext event_cxt;	/* reset after every handler call */
	int64		horizon;		/* consume keys below this */
	bool		bounded;		/* and only up to upto_key, upto_pos */
	int64		upto_key;
	int64		upto_pos;
	bool		latest;			/* read events with the latest snapshot */
	Snapshot	snapshot;		/* or with this one (verify) */

	/* a shadow model: the handler writes only there */
	Oid			shadow_nsp;
	List	   *baseline;		/* relations locked for writing before */
	bool		escaped;

	/* progress, saved to the catalog at the end */
	ProjFrontier f;
	int64		applied;
	int64		skipped;
	bool		drained;		/* the last fetch came back short */
	bool		failed;			/* stopped by a handler error */
	FailedEvent last_failure;	/* what stopped it */

	/* the call in progress, for error reports */
	bool		in_handler;
	HeapTuple	cur_tuple;
	TupleDesc	cur_desc;
	int64		cur_ncall;
	int64		attempt_applied;
} ApplyState;

/*
 * Fetch up to chunk events after the state's frontier.  Returns the number
 * fetched; the rows are in SPI_tuptable.
 */
static uint64
Fetch(ApplyState *st, int64 chunk)
{
	Datum		args[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = Int64GetDatum(st->f.key);
	args[1] = Int64GetDatum(st->f.pos);
	args[2] = Int64GetDatum(st->horizon);
	args[3] = Int64GetDatum(st->f.skip_position);
	if (st->def->has_filter)
		args[4] = st->def->event_types;
	else
		nulls[4] = 'n';
	args[5] = Int64GetDatum(chunk);
	if (st->bounded)
	{
		args[6] = Int64GetDatum(st->upto_key);
		args[7] = Int64GetDatum(st->upto_pos);
		ProjRunSnapshot(&fetch_upto_stmt, args, nulls, st->snapshot, 0);
	}
	else if (st->snapshot != InvalidSnapshot)
		ProjRunSnapshot(&fetch_stmt, args, nulls, st->snapshot, 0);
	else
		ProjRun(&fetch_stmt, args, nulls, st->latest, 0);
	return SPI_processed;
}

static int64
Int8Field(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(tup, desc, col, &isnull));
}

/* The frontier moves past an applied (or skipped) event. */
static void
Advance(ApplyState *st, HeapTuple tup, TupleDesc desc)
{
	st->f.key = Int8Field(tup, desc, FETCH_KEY);
	st->f.pos = Int8Field(tup, desc, FETCH_POSITION);
	st->f.position = st->f.pos;
}

/* Call a per-event handler for each of n fetched events. */
static void
CallPerEvent(ApplyState *st, SPITupleTable *tuptable, uint64 n, int64 *done)
{
	uint64		i;

	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		bool		isnull;
		Datum		event = SPI_getbinval(tup, tuptable->tupdesc, FETCH_EVENT, &isnull);
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		st->cur_tuple = tup;
		st->cur_desc = tuptable->tupdesc;
		st->cur_ncall = 1;
		oldcxt = MemoryContextSwitchTo(st->event_cxt);
		st->in_handler = true;
		ProjCallHandler(&st->call, event);
		st->in_handler = false;
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(st->event_cxt);
		CommandCounterIncrement();

		Advance(st, tup, tuptable->tupdesc);
		st->applied++;
		st->attempt_applied++;
		(*done)++;
	}
}

/* Call a batch handler once with the n fetched events, in order. */
static void
CallBatch(ApplyState *st, SPITupleTable *tuptable, uint64 n, int64 *done)
{
	MemoryContext oldcxt;
	Datum	   *elems;
	ArrayType  *events;
	uint64		i;

	if (n == 0)
		return;
	CHECK_FOR_INTERRUPTS();
	oldcxt = MemoryContextSwitchTo(st->event_cxt);
	elems = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		elems[i] = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc,
								 FETCH_EVENT, &isnull);
	}
	events = construct_array(elems, (int) n, st->events_type, st->events_typlen,
							 st->events_typbyval, st->events_typalign);
	st->cur_tuple = tuptable->vals[0];
	st->cur_desc = tuptable->tupdesc;
	st->cur_ncall = (int64) n;
	st->in_handler = true;
	ProjCallHandler(&st->call, PointerGetDatum(events));
	st->in_handler = false;
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->event_cxt);
	CommandCounterIncrement();

	Advance(st, tuptable->vals[n - 1], tuptable->tupdesc);
	st->applied += (int64) n;
	st->attempt_applied += (int64) n;
	*done += (int64) n;
}

/*
 * The permanent tables this transaction holds a lock on that allows
 * writing them (RowExclusiveLock or stronger), other than the extension's
 * own and the shadow model's.
 */
static List *
TablesLockedForWrite(Oid shadow_nsp)
{
	const ProjExtInfo *ext = ProjExtGet(false);
	LockData   *locks = GetLockStatusData();
	List	   *relids = NIL;
	int			i;

	for (i = 0; i < locks->nelements; i++)
	{
		LockInstanceData *lock = &locks->locks[i];
		Oid			relid;
		char		relkind;

		if (lock->pid != MyProcPid || lock->locktag.locktag_type != LOCKTAG_RELATION ||
			lock->locktag.locktag_field1 != MyDatabaseId)
			continue;
		if ((lock->holdMask & ~(LOCKBIT_ON(AccessShareLock) | LOCKBIT_ON(RowShareLock))) == 0)
			continue;
		relid = lock->locktag.locktag_field2;
		relkind = get_rel_relkind(relid);
		if ((relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
			 relkind != RELKIND_MATVIEW) ||
			get_rel_persistence(relid) == RELPERSISTENCE_TEMP ||
			get_rel_namespace(relid) == shadow_nsp ||
			get_rel_namespace(relid) == ext->schema_oid ||
			relid < FirstNormalObjectId)
			continue;
		relids = list_append_unique_oid(relids, relid);
	}
	pfree(locks->locks);
	pfree(locks);
	return relids;
}

/*
 * Whether this transaction holds a lock that allows writing on a table
 * other than the extension's, temporary ones and the projection's new
 * model's (it may have written it): a build's handler could then write
 * that table unnoticed.
 */
bool
ProjModelWrittenHere(const ProjectionDef *def)
{
	Oid			nsp = def->build_schema != NULL ?
		get_namespace_oid(def->build_schema, true) : InvalidOid;
	List	   *locked = TablesLockedForWrite(nsp);
	bool		written = locked != NIL;

	list_free(locked);
	return written;
}

/*
 * A shadow model's handler may write only the shadow model: a handler that
 * names its tables with their schema would write the live model (and apply
 * its events twice).  Checked after each chunk.
 */
static void
CheckConfined(ApplyState *st)
{
	List	   *now;
	ListCell   *lc;

	if (!OidIsValid(st->shadow_nsp))
		return;
	now = TablesLockedForWrite(st->shadow_nsp);
	foreach(lc, now)
	{
		Oid			relid = lfirst_oid(lc);

		if (list_member_oid(st->baseline, relid))
			continue;
		st->escaped = true;
		list_free(now);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("handler of projection \"%s\" wrote to table %s outside the model being rebuilt",
						st->def->name, get_rel_name(relid)),
				 errdetail("During an online rebuild or verify() the handler runs with the new "
						   "model's schema first in its search_path; it must reach its tables "
						   "by unqualified names and write nothing else."),
				 errhint("Write the handler with unqualified table names, declare every table it "
						 "writes with projections.set_tables(), or use a plain rebuild.")));
	}
	list_free(now);
}

/*
 * Events per batch: projections.batch_size for a per-event handler,
 * projections.batch_handler_size (the array a call gets) for a batch
 * handler.
 */
static int64
BatchSize(const ProjectionDef *def)
{
	return (int64) (def->batch ? proj_batch_handler_size : proj_batch_size);
}

/*
 * Apply up to limit events after the state's frontier, in chunks of
 * BatchSize.  Errors propagate; the caller runs this inside a
 * subtransaction.
 */
static void
ApplyRange(ApplyState *st, int64 limit)
{
	int64		done = 0;

	st->drained = false;
	while (done < limit)
	{
		int64		chunk = Min(BatchSize(st->def), limit - done);
		uint64		n = Fetch(st, chunk);
		SPITupleTable *tuptable = SPI_tuptable;

		if (st->def->batch)
			CallBatch(st, tuptable, n, &done);
		else
			CallPerEvent(st, tuptable, n, &done);
		st->cur_tuple = NULL;
		SPI_freetuptable(tuptable);
		CheckConfined(st);
		if ((int64) n < chunk)
		{
			st->drained = true;
			break;
		}
	}
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
	ProjFrontier f = st->f;
	int64		applied = st->applied;
	volatile bool ok = true;

	st->attempt_applied = 0;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		ApplyRange(st, limit);
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
		fail->timed_out = st->in_handler && ProjCallTimedOut();
		fail->escaped = st->escaped;
		fail->index = st->attempt_applied;
		fail->ncall = st->cur_ncall;
		if (st->in_handler && st->cur_tuple != NULL)
		{
			bool		isnull;
			HeapTuple	tup = st->cur_tuple;
			TupleDesc	desc = st->cur_desc;

			fail->key = Int8Field(tup, desc, FETCH_KEY);
			fail->position = Int8Field(tup, desc, FETCH_POSITION);
			fail->stream_id = TextDatumGetCString(SPI_getbinval(tup, desc, FETCH_STREAM_ID, &isnull));
			fail->stream_version = DatumGetInt32(SPI_getbinval(tup, desc, FETCH_STREAM_VERSION, &isnull));
			fail->event_type = TextDatumGetCString(SPI_getbinval(tup, desc, FETCH_EVENT_TYPE, &isnull));
		}
		st->in_handler = false;
		st->cur_tuple = NULL;
		st->escaped = false;

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		st->f = f;
		st->applied = applied;
		st->drained = false;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* Free what a failure holds (in the state's long-lived context). */
static void
ForgetFailure(FailedEvent *fail)
{
	if (fail->edata != NULL)
		FreeErrorData(fail->edata);
	if (fail->stream_id != NULL)
		pfree(fail->stream_id);
	if (fail->event_type != NULL)
		pfree(fail->event_type);
	memset(fail, 0, sizeof(*fail));
}

/* A newer failure replaces an older one. */
static void
ReplaceFailure(FailedEvent *fail, FailedEvent *again)
{
	ForgetFailure(fail);
	*fail = *again;
}

/* A failure that is not the event's: let it propagate. */
static void
RethrowUnlessEvents(FailedEvent *fail)
{
	if (fail->escaped)
		return;
	if (!fail->in_handler ||
		ProjErrorIsTransient(fail->edata->sqlerrcode, fail->timed_out))
		ReThrowError(fail->edata);
}

/*
 * A handler call failed (*fail): apply the events before the failing one
 * and describe it in *fail.  Returns false when, applied again, the events
 * no longer fail (the caller just goes on).
 */
static bool
ApplyBeforeFailure(ApplyState *st, FailedEvent *fail)
{
	FailedEvent again;
	int64		n;

	/* the calls before the failing one succeeded: apply their events again */
	while (fail->index > 0)
	{
		if (TryApply(st, fail->index, &again))
			break;
		RethrowUnlessEvents(&again);
		ReplaceFailure(fail, &again);
	}

	/* halve the failing call until one event is left */
	n = fail->ncall;
	while (n > 1)
	{
		int64		half = n / 2;

		if (TryApply(st, half, &again))
			n -= half;
		else
		{
			RethrowUnlessEvents(&again);
			ReplaceFailure(fail, &again);
			n = half;
		}
	}
	if (fail->ncall > 1)
	{
		/* (the event left was never called alone) */
		if (TryApply(st, 1, &again))
			return false;
		RethrowUnlessEvents(&again);
		ReplaceFailure(fail, &again);
	}
	return true;
}

/*
 * Pass over a failing event under on_error = skip.
 */
static void
SkipEvent(ApplyState *st, FailedEvent *fail)
{
	if (st->record)
	{
		ProjSkippedEvent ev;

		ev.position = fail->position;
		ev.stream_id = fail->stream_id;
		ev.stream_version = fail->stream_version;
		ev.event_type = fail->event_type;
		ev.message = fail->edata->message;
		ev.sqlerrcode = fail->edata->sqlerrcode;
		ProjCatalogRecordSkipped(st->def->name, st->target, &ev);
	}
	st->f.key = fail->key;
	st->f.pos = fail->position;
	st->f.position = fail->position;
	st->skipped++;
}

/*
 * Stop at a failing event under on_error = pause: the live model pauses
 * (state failed); an online rebuild stops (its caller drops the shadow).
 */
static void
StopAtEvent(ApplyState *st, FailedEvent *fail)
{
	const char *name = st->def->name;

	st->failed = true;
	st->last_failure = *fail;
	if (!st->record)
		return;
	if (st->target == PROJ_TARGET_BUILD)
	{
		ProjCatalogRecordError(name,
							   psprintf("online rebuild stopped: %s", fail->edata->message),
							   fail->edata->sqlerrcode, fail->escaped ? 0 : fail->position,
							   false);
		if (fail->escaped)
			ereport(LOG,
					(errmsg("online rebuild of projection \"%s\" stopped: %s",
							name, fail->edata->message),
					 errdetail("The live read model is unchanged.")));
		else
			ereport(LOG,
					(errmsg("online rebuild of projection \"%s\" stopped at event " INT64_FORMAT
							" (stream \"%s\" version %d, type %s): %s",
							name, fail->position, fail->stream_id,
							fail->stream_version, fail->event_type,
							fail->edata->message),
					 errdetail("The live read model is unchanged.")));
		return;
	}
	ProjCatalogRecordError(name, fail->edata->message, fail->edata->sqlerrcode,
						   fail->position, true);
	ereport(LOG,
			(errmsg("projection \"%s\" paused at event " INT64_FORMAT
					" (stream \"%s\" version %d, type %s): %s",
					name, fail->position, fail->stream_id,
					fail->stream_version, fail->event_type,
					fail->edata->message),
			 errhint("Fix the handler or the data, then call projections.resume(%s).",
					 quote_literal_cstr(name))));
}

/*
 * Apply up to limit events, handling handler errors by the projection's
 * policy.  Errors that are not the handler's, or are transient, propagate.
 */
static void
ApplyWithPolicy(ApplyState *st, int64 limit)
{
	int64		remaining = limit;

	while (remaining > 0 && !st->failed)
	{
		FailedEvent fail;
		int64		before = st->applied;

		if (TryApply(st, remaining, &fail))
			break;
		RethrowUnlessEvents(&fail);
		if (fail.escaped)
		{
			/* no event is to blame: the handler cannot build this model */
			StopAtEvent(st, &fail);
			break;
		}
		if (!ApplyBeforeFailure(st, &fail))
		{
			remaining -= st->applied - before;
			ForgetFailure(&fail);
			continue;
		}
		remaining -= st->applied - before;
		if (st->def->skip_on_error)
		{
			SkipEvent(st, &fail);
			ForgetFailure(&fail);
			remaining--;
			st->drained = false;
		}
		else
			StopAtEvent(st, &fail);
	}
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

	args[0] = Int64GetDatum(st->f.key);
	args[1] = Int64GetDatum(st->f.pos);
	args[2] = Int64GetDatum(st->horizon);
	ProjRun(&probe_stmt, args, NULL, st->latest, 1);
	return SPI_processed > 0;
}

/* Drained and nothing failed: every event below the horizon was seen. */
static bool
MoveFrontierToHorizon(ApplyState *st)
{
	if (!st->drained || st->failed || st->horizon == PG_INT64_MAX)
		return false;
	if (st->f.key > st->horizon - 1 ||
		(st->f.key == st->horizon - 1 && st->f.pos == PG_INT64_MAX))
		return false;
	if (st->applied == 0 && st->skipped == 0 && !FrontierCanMove(st))
		return false;
	st->f.key = st->horizon - 1;
	st->f.pos = PG_INT64_MAX;
	return true;
}

/* Drained, but committed events wait at or above the safe key? */
static bool
BlockedBehindHorizon(ApplyState *st)
{
	bool		isnull;
	Datum		max_key;

	ProjRun(&max_event_key_stmt, NULL, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	max_key = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetInt64(max_key) >= st->horizon;
}

/*
 * Set up the state for applying def's model (the live one, or the shadow
 * in schema), starting from the model's checkpoint.  False if the handler
 * cannot be called (the problem is recorded when record is set).
 */
static bool
InitState(ApplyState *st, ProjectionDef *def, ProjTarget target,
		  const char *schema, bool record, MemoryContext cxt)
{
	ProjCallProblem problem;
	Oid			handler;

	memset(st, 0, sizeof(*st));
	st->def = def;
	st->target = target;
	st->record = record;
	st->cxt = cxt;
	st->event_cxt = AllocSetContextCreate(cxt, "projections event",
										  ALLOCSET_DEFAULT_SIZES);
	st->events_type = ProjExtGet(false)->events_type;
	get_typlenbyvalalign(st->events_type, &st->events_typlen,
						 &st->events_typbyval, &st->events_typalign);

	if (!ProjCheckCallable(def->name, "handler", def->handler, def->owner,
						   &handler, &problem))
	{
		if (!record)
			ProjRaiseProblem(&problem);
		ProjCatalogRecordError(def->name, problem.message, problem.sqlerrcode,
							   0, target == PROJ_TARGET_LIVE);
		ereport(LOG,
				(errmsg("projection \"%s\" %s: %s", def->name,
						target == PROJ_TARGET_LIVE ? "paused" : "not rebuilt",
						problem.message)));
		st->failed = true;
		return false;
	}
	ProjCallPrepare(&st->call, handler, def->owner, def->search_path, schema,
					def->name, cxt);
	if (target == PROJ_TARGET_LIVE)
		st->f = def->live;
	else
		st->f = def->build;

	/*
	 * A rebuild replays the history: its handler appends nothing, and so a
	 * worker's transaction leaves the safe key alone (shmem.c).
	 */
	if (schema != NULL || (target == PROJ_TARGET_LIVE && def->rebuilding))
	{
		st->call.replaying = true;
		ProjWorkerPublishBuild();
	}
	if (schema != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		st->shadow_nsp = get_namespace_oid(schema, false);
		st->baseline = TablesLockedForWrite(st->shadow_nsp);
		MemoryContextSwitchTo(old);
		/* a write to a table locked already would go unnoticed */
		if (st->baseline != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot build a new model of projection \"%s\" in a transaction "
							"that has written tables", def->name),
					 errdetail("A write of its handler to a table this transaction has "
							   "written already would go unnoticed."),
					 errhint("Call it in a transaction of its own.")));
	}
	return true;
}

/* Save the state's progress to the catalog, and tell who waits for it. */
static void
SaveProgress(ApplyState *st, bool rebuilding, bool activated)
{
	ProjProgress progress;

	progress.frontier = st->f;
	progress.applied = st->applied;
	progress.skipped = st->skipped;
	progress.rebuilding = rebuilding;
	progress.inline_active = activated;
	ProjCatalogSaveProgress(st->def->name, st->target, &progress);
	if (st->target == PROJ_TARGET_LIVE)
	{
		if (activated)
			ProjInlineChanged();
		if (st->applied > 0 || st->skipped > 0 || activated)
			NotifyProgress(st->def->name, st->f.position, st->applied);
		ProjNoteProgress();
	}
}

/*
 * A drained live model: the replay of a plain rebuild is over, and an inline
 * projection that has caught up goes inline now (the last events applied
 * while appends wait).  Returns whether it went inline; *rebuilding and
 * *save are updated.
 */
static bool
FinishLive(ApplyState *st, bool wait, bool *rebuilding, bool *save)
{
	if (!st->drained || st->failed)
		return false;
	if (*rebuilding)
	{
		*rebuilding = false;
		*save = true;
	}
	if (!st->def->is_inline || !ProjInlineLockForSwitch(st->def->name, wait))
		return false;
	st->horizon = PG_INT64_MAX;
	st->latest = true;
	ApplyWithPolicy(st, PG_INT64_MAX);
	if (st->failed)
		return false;
	*save = true;
	return true;
}

/*
 * Load a model to apply: false when there is nothing to do (no such
 * projection, not active, already inline, no rebuild under way).
 */
static bool
LoadModel(const char *name, ProjTarget target, ProjApplyCaller caller,
		  ProjectionDef *def)
{
	if (!ProjCatalogLoad(name, def))
	{
		if (caller == PROJ_CALLER_RUN)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("projection \"%s\" does not exist", name)));
		return false;
	}
	if (target == PROJ_TARGET_LIVE)
		return def->state == PROJ_STATE_ACTIVE && !def->inline_active;
	return def->build_schema != NULL;
}

/*
 * Apply pending events of one projection's model in the current
 * transaction.
 *
 * The worker passes PROJ_CALLER_WORKER: one batch, and nothing at all if
 * another process is applying the model.  run() passes PROJ_CALLER_RUN:
 * wait for the model's lock, apply up to max_events (all, if 0 or less).
 * An inline projection that has caught up is switched on (inline.c).  The
 * caller has an active snapshot.
 */
void
ProjApply(const char *name, ProjTarget target, ProjApplyCaller caller,
		  int64 max_events, ProjApplyResult *result)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	ProjectionDef def;
	ApplyState	st;
	bool		save;
	bool		rebuilding;
	bool		activated = false;

	memset(result, 0, sizeof(*result));
	if (!ProjCatalogLock(name, target, caller == PROJ_CALLER_RUN))
	{
		result->locked_out = true;
		return;
	}
	cxt = AllocSetContextCreate(CurrentMemoryContext, "projections apply",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	if (!LoadModel(name, target, caller, &def))
		goto done;
	if (!InitState(&st, &def, target,
				   target == PROJ_TARGET_BUILD ? def.build_schema : NULL, true, cxt))
	{
		result->failed = true;
		goto done;
	}

	SPI_connect();
	st.horizon = ProjSafeKey(GetActiveSnapshot());
	ApplyWithPolicy(&st, caller == PROJ_CALLER_WORKER ? BatchSize(&def) :
					(max_events > 0 ? max_events : PG_INT64_MAX));
	save = st.applied > 0 || st.skipped > 0;
	if (MoveFrontierToHorizon(&st))
		save = true;
	rebuilding = def.rebuilding;
	if (target == PROJ_TARGET_LIVE)
		activated = FinishLive(&st, caller == PROJ_CALLER_RUN, &rebuilding, &save);
	if (save)
		SaveProgress(&st, rebuilding, activated);

	result->applied = st.applied;
	result->more = !st.drained && !st.failed;
	result->drained = st.drained && !st.failed;
	result->failed = st.failed;
	if (result->drained && !activated)
		result->blocked = BlockedBehindHorizon(&st);
	SPI_finish();

done:
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * Apply every event below horizon to a model whose locks the caller holds
 * (the last events of an online rebuild before its exchange, with every
 * appender locked out for an inline projection), and save its checkpoint.
 */
void
ProjApplyAll(ProjectionDef *def, ProjTarget target, const char *schema,
			 int64 horizon, bool latest, ProjApplyResult *result)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	ApplyState	st;

	memset(result, 0, sizeof(*result));
	cxt = AllocSetContextCreate(CurrentMemoryContext, "projections apply",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	if (!InitState(&st, def, target, schema, true, cxt))
		result->failed = true;
	else
	{
		SPI_connect();
		st.horizon = horizon;
		st.latest = latest;
		ApplyWithPolicy(&st, PG_INT64_MAX);
		(void) MoveFrontierToHorizon(&st);
		SaveProgress(&st, def->rebuilding, def->inline_active);
		SPI_finish();
		result->applied = st.applied;
		result->drained = st.drained && !st.failed;
		result->failed = st.failed;
		if (target == PROJ_TARGET_LIVE)
			def->live = st.f;
		else
			def->build = st.f;
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * Build a scratch model (verify): apply every event up to (upto_key,
 * upto_pos) -- or, with inline_all, every event -- visible to snapshot, to
 * the model in schema, from the first event.  Nothing is recorded; a
 * handler error under on_error = pause is raised.
 */
int64
ProjApplyScratch(ProjectionDef *def, const char *schema, Snapshot snapshot,
				 bool inline_all, int64 upto_key, int64 upto_pos)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	ApplyState	st;
	int64		applied;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "projections verify",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	(void) InitState(&st, def, PROJ_TARGET_BUILD, schema, false, cxt);
	memset(&st.f, 0, sizeof(st.f));
	st.snapshot = snapshot;
	st.horizon = PG_INT64_MAX;
	if (!inline_all)
	{
		st.bounded = true;
		st.upto_key = upto_key;
		st.upto_pos = upto_pos;
	}
	SPI_connect();
	ApplyWithPolicy(&st, PG_INT64_MAX);
	SPI_finish();
	if (st.failed)
		ereport(ERROR,
				(errcode(st.last_failure.edata->sqlerrcode),
				 errmsg("the new model of projection \"%s\" could not be built: %s",
						def->name, st.last_failure.edata->message),
				 st.last_failure.escaped ? 0 :
				 errdetail("The handler failed at event " INT64_FORMAT " (stream \"%s\" version %d, type %s).",
						   st.last_failure.position, st.last_failure.stream_id,
						   st.last_failure.stream_version, st.last_failure.event_type)));
	applied = st.applied;
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return applied;
}
