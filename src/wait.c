/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  Read-your-writes and where things stand: projections.wait(),
 *	  wait_for_lsn(), head(), and the helpers of the status view.  All of
 *	  them work in read-only transactions and on hot standbys, and write
 *	  nothing.
 *
 * wait() compares against the checkpoint that committed (on a standby: that
 * was replayed), never against in-memory progress.  On a primary it sleeps
 * on the database's progress condition variable, broadcast when a
 * transaction that moved a checkpoint commits.  On a standby nothing is
 * broadcast (the checkpoints arrive by replay): it watches the replay
 * position, which is cheap to read, and reads the catalog again only when
 * replay has moved.  From PostgreSQL 16 on, the startup process wakes it
 * for each replayed record; before, it polls, every millisecond while
 * replay moves and less often while it does not.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "settings.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "api.h"
#include "catalog.h"
#include "compat.h"
#include "keys.h"
#include "registry.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(projections_wait);
PG_FUNCTION_INFO_V1(projections_wait_for_lsn);
PG_FUNCTION_INFO_V1(projections_head);
PG_FUNCTION_INFO_V1(projections_safe_key);
PG_FUNCTION_INFO_V1(projections_worker_status);

/*
 * A standby waiter looks at the replay position at least every
 * STANDBY_POLL_MS, up to STANDBY_POLL_MAX_MS while replay does not move
 * (PostgreSQL 16 and later wake it when a record is replayed), and reads
 * the catalog at most every STANDBY_POLL_MS.
 */
#define STANDBY_POLL_MS		1
#define STANDBY_POLL_MAX_MS	8
/* ... and a waiter with nobody to wake it (no preload) between checks */
#define FALLBACK_POLL_MS	10

static ProjStatement read_checkpoint_stmt = {
	"SELECT p.checkpoint_key, p.checkpoint_position, p.inline_active,"
	" p.state = 'active' FROM projections.projection p WHERE p.name = $1",
	1, {TEXTOID}
};

static ProjStatement all_names_stmt = {
	"SELECT p.name FROM projections.projection p WHERE p.state = 'active'"
	" ORDER BY p.name", 0
};

static ProjStatement last_safe_event_stmt = {
	"SELECT e.ordering_key, e.global_position FROM projections.events e"
	" WHERE e.ordering_key < $1"
	" ORDER BY e.ordering_key DESC, e.global_position DESC LIMIT 1",
	1, {INT8OID}
};

static ProjStatement wait_target_stmt = {
	"SELECT e.ordering_key, e.global_position FROM projections.events e"
	" WHERE (e.ordering_key, e.global_position) > ($1, $2)"
	" AND e.global_position <= $3"
	" ORDER BY e.ordering_key DESC, e.global_position DESC LIMIT 1",
	3, {INT8OID, INT8OID, INT8OID}
};

static ProjStatement event_visible_stmt = {
	"SELECT 1 FROM projections.events e WHERE e.global_position = $1",
	1, {INT8OID}
};

static ProjStatement head_stmt = {
	"SELECT e.global_position FROM projections.events e"
	" WHERE e.ordering_key < $1 ORDER BY e.global_position DESC LIMIT 1",
	1, {INT8OID}
};

typedef enum WaitOutcome
{
	WAIT_REACHED,				/* the checkpoint is there */
	WAIT_NOT_YET,
	WAIT_STOPPED				/* paused or failed: it will not get there */
} WaitOutcome;

/* one wait in progress */
typedef struct Waiter
{
	Datum		name;			/* the projection, as text */
	const char *name_str;
	bool		has_up_to;
	int64		up_to;
	TimestampTz deadline;
	bool		standby;
	XLogRecPtr	seen_replay;	/* replay position at the last check */
	TimestampTz checked_at;		/* when the catalog was last read */
	long		poll_ms;		/* the current interval of the poll */
	bool		have_target;	/* the last event waited for is known */
	int64		key;
	int64		pos;
} Waiter;

/* the longest wait: longer timeouts (and infinity) wait this long */
#define MAX_WAIT_MS		(INT64CONST(1000) * 365 * 86400 * 1000)

static int64
IntervalToMs(Interval *iv)
{
	double		ms;

#ifdef INTERVAL_NOT_FINITE
	if (INTERVAL_IS_NOBEGIN(iv))
		return 0;
	if (INTERVAL_NOT_FINITE(iv))
		return MAX_WAIT_MS;
#endif
	ms = iv->time / 1000.0 +
		((double) iv->day + (double) iv->month * DAYS_PER_MONTH) * 86400000.0;
	if (ms <= 0)
		return 0;
	return ms >= (double) MAX_WAIT_MS ? MAX_WAIT_MS : (int64) ms;
}

/* Read (key, position) from the first row of the last result. */
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

/*
 * The last event the waiter waits for, in the projection's order, beyond
 * the checkpoint (ck, cpos).  On a standby, an event given by position must
 * have been replayed first: until then, there is no target yet.  Returns
 * false when every such event is behind the checkpoint.  Connected to SPI.
 */
static bool
FindTarget(Waiter *w, int64 ck, int64 cpos, bool *known)
{
	*known = true;
	if (!w->has_up_to)
	{
		Datum		arg = Int64GetDatum(ProjSafeKey(GetLatestSnapshot()));

		ProjRun(&last_safe_event_stmt, &arg, NULL, true, 1);
	}
	else
	{
		Datum		args[3];

		if (w->standby)
		{
			args[0] = Int64GetDatum(w->up_to);
			ProjRun(&event_visible_stmt, args, NULL, true, 1);
			if (SPI_processed == 0)
			{
				*known = false;
				return true;
			}
		}
		args[0] = Int64GetDatum(ck);
		args[1] = Int64GetDatum(cpos);
		args[2] = Int64GetDatum(w->up_to);
		ProjRun(&wait_target_stmt, args, NULL, true, 1);
	}
	return KeyPair(&w->key, &w->pos);
}

/*
 * Has the projection's committed (or replayed) checkpoint reached the
 * waiter's target?  An active inline projection has, once the event is
 * there: it was applied by the transaction that appended it.
 */
static WaitOutcome
Check(Waiter *w)
{
	WaitOutcome outcome = WAIT_NOT_YET;
	int64		ck;
	int64		cpos;
	bool		isnull;
	bool		known;

	SPI_connect();
	ProjRun(&read_checkpoint_stmt, &w->name, NULL, true, 1);
	if (!KeyPair(&ck, &cpos))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("projection \"%s\" does not exist", w->name_str)));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 4, &isnull)))
		outcome = WAIT_STOPPED;
	else
	{
		bool		inline_active = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc,
															   3, &isnull));

		if (!w->have_target)
		{
			if (!FindTarget(w, ck, cpos, &known))
				outcome = WAIT_REACHED;
			else if (known)
				w->have_target = true;
		}
		if (outcome == WAIT_NOT_YET && w->have_target &&
			(inline_active || ck > w->key || (ck == w->key && cpos >= w->pos)))
			outcome = WAIT_REACHED;
	}
	SPI_finish();
	return outcome;
}

/*
 * Sleep until something may have changed, at most until the deadline.
 * Returns false when the deadline has passed.
 */
static bool
Sleep(Waiter *w)
{
	long		left = (long) ((w->deadline - GetCurrentTimestamp()) / 1000);
	bool		available;

	if (left <= 0)
		return false;
	if (w->standby)
	{
		ConditionVariable *replayed = ProjReplayConditionVariable();

		/* look at the replay position until it moves */
		for (;;)
		{
			XLogRecPtr	replay = GetXLogReplayRecPtr(NULL);
			TimestampTz now = GetCurrentTimestamp();

			if (!RecoveryInProgress() ||
				(replay != w->seen_replay &&
				 TimestampDifferenceExceeds(w->checked_at, now, STANDBY_POLL_MS)))
			{
				w->seen_replay = replay;
				w->checked_at = now;
				w->poll_ms = STANDBY_POLL_MS;
				if (replayed != NULL)
					ConditionVariableCancelSleep();
				return true;
			}
			left = (long) ((w->deadline - now) / 1000);
			if (left <= 0)
			{
				if (replayed != NULL)
					ConditionVariableCancelSleep();
				return false;
			}
			if (replayed != NULL && replay == w->seen_replay)
				(void) ConditionVariableTimedSleep(replayed, Min(left, 100),
												   PG_WAIT_EXTENSION);
			else
			{
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 Min(left, w->poll_ms), PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				if (replay == w->seen_replay)
					w->poll_ms = Min(w->poll_ms * 2, STANDBY_POLL_MAX_MS);
			}
			CHECK_FOR_INTERRUPTS();
		}
	}
	if (!ProjWaitForProgress(Min(left, 100), &available))
	{
		if (!available)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left, FALLBACK_POLL_MS), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
	CHECK_FOR_INTERRUPTS();
	return true;
}

/* Wait for one projection; true when it got there before the deadline. */
static bool
WaitFor(Waiter *w)
{
	WaitOutcome outcome;
	bool		result = false;

	w->standby = RecoveryInProgress();
	w->seen_replay = w->standby ? GetXLogReplayRecPtr(NULL) : InvalidXLogRecPtr;
	w->checked_at = GetCurrentTimestamp();
	w->poll_ms = STANDBY_POLL_MS;
	for (;;)
	{
		outcome = Check(w);
		if (outcome != WAIT_NOT_YET)
		{
			result = outcome == WAIT_REACHED;
			break;
		}
		if (!Sleep(w))
			break;
	}
	if (!w->standby)
		ProjCancelProgressWait();
	return result;
}

static void
CheckCanWait(void)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("projections.wait() cannot be used in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Such a transaction would not see the read model move."),
				 errhint("Call it in a READ COMMITTED transaction.")));
}

static TimestampTz
DeadlineArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
									   IntervalToMs(PG_GETARG_INTERVAL_P(argno)));
}

/*
 * The target of an async projection's wait cannot be one of the waiting
 * transaction's own events: they are applied only after it commits.
 */
static void
CheckNotOwnEvents(Waiter *w)
{
	int64		own = ProjOwnKeyBase();

	if (own > 0 && w->have_target && w->key >= own)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("projections.wait() would wait for the current transaction itself"),
				 errdetail("Events appended after this transaction took its transaction id "
						   "cannot be applied before it commits."),
				 errhint("Commit first, then call projections.wait().")));
}

/*
 * projections.wait(name, up_to, timeout): block until the projection has
 * applied every committed event at or below position up_to (NULL: every
 * event that is safe to read now).  Returns false on timeout, and at once
 * when the projection is paused or failed.  On a hot standby: until the
 * standby has replayed the event and a checkpoint covering it.
 */
Datum
projections_wait(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	Waiter		w;
	WaitOutcome first;

	memset(&w, 0, sizeof(w));
	w.deadline = DeadlineArg(fcinfo, 2);
	CheckCanWait();
	w.name = CStringGetTextDatum(name);
	w.name_str = name;
	w.has_up_to = !PG_ARGISNULL(1);
	w.up_to = w.has_up_to ? PG_GETARG_INT64(1) : 0;
	w.standby = RecoveryInProgress();
	(void) ProjExtGet(false);

	first = Check(&w);
	if (first != WAIT_NOT_YET)
		PG_RETURN_BOOL(first == WAIT_REACHED);
	CheckNotOwnEvents(&w);
	if (!w.standby)
		ProjWarnIfNoWorker("projections.wait() returns true only if another session calls projections.run().");
	PG_RETURN_BOOL(WaitFor(&w));
}

/*
 * Wait until this server has replayed lsn (at once on a primary); false at
 * the deadline.
 */
static bool
WaitForReplay(XLogRecPtr lsn, TimestampTz deadline)
{
	ConditionVariable *replayed = ProjReplayConditionVariable();
	bool		result = true;

	while (RecoveryInProgress() && GetXLogReplayRecPtr(NULL) < lsn)
	{
		long		left = (long) ((deadline - GetCurrentTimestamp()) / 1000);

		if (left <= 0)
		{
			result = false;
			break;
		}
		if (replayed != NULL)
			(void) ConditionVariableTimedSleep(replayed, Min(left, 100), PG_WAIT_EXTENSION);
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left, STANDBY_POLL_MS), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
	if (replayed != NULL)
		ConditionVariableCancelSleep();
	return result;
}

/*
 * projections.wait_for_lsn(lsn, name, timeout): read-your-writes without a
 * position.  After writing on the primary, an application takes
 * pg_current_wal_insert_lsn(); on a standby, this waits until replay has
 * reached that LSN (so every event the application committed is there) and
 * then until the projection (NULL: every projection) has applied every
 * event that is safe to read.  On the primary the LSN is already there.
 */
Datum
projections_wait_for_lsn(PG_FUNCTION_ARGS)
{
	XLogRecPtr	lsn;
	TimestampTz deadline;
	List	   *names = NIL;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lsn must not be null")));
	lsn = PG_GETARG_LSN(0);
	deadline = DeadlineArg(fcinfo, 2);
	CheckCanWait();
	(void) ProjExtGet(false);

	/* the application's writes first */
	if (!WaitForReplay(lsn, deadline))
		PG_RETURN_BOOL(false);

	/* then the projections */
	if (!PG_ARGISNULL(1))
		names = list_make1(ProjNameArg(fcinfo, 1));
	else
	{
		MemoryContext cxt = CurrentMemoryContext;
		uint64		i;

		SPI_connect();
		ProjRun(&all_names_stmt, NULL, NULL, true, 0);
		MemoryContextSwitchTo(cxt);
		for (i = 0; i < SPI_processed; i++)
			names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1));
		SPI_finish();
		MemoryContextSwitchTo(cxt);
	}
	foreach(lc, names)
	{
		Waiter		w;

		memset(&w, 0, sizeof(w));
		w.name_str = (const char *) lfirst(lc);
		w.name = CStringGetTextDatum(w.name_str);
		w.deadline = deadline;
		if (!WaitFor(&w))
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
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
	ProjRun(&head_stmt, &arg, NULL, false, 1);
	if (SPI_processed > 0)
	{
		bool		isnull;

		head = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	PG_RETURN_INT64(head);
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
 * projections._worker_status(): this database's workers, for the status
 * view: the leading worker's pid, its state, and how many processes apply
 * projections here.
 */
Datum
projections_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {true, false, false};
	const char *state;
	int			pid = 0;
	int			count = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	if (RecoveryInProgress())
		state = "on the primary (this server is a standby)";
	else if (!ProjShmemAttached())
		state = "not in shared_preload_libraries";
	else if (!proj_enabled)
		state = "disabled";
	else
	{
		ProjWorkerState s = ProjDatabaseWorkerState(MyDatabaseId, &pid, &count);

		state = ProjWorkerStateName(s);
		if (pid != 0)
		{
			values[0] = Int32GetDatum(pid);
			nulls[0] = false;
		}
	}
	values[1] = CStringGetTextDatum(state);
	values[2] = Int32GetDatum(count);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
