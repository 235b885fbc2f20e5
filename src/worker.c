/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database worker: applies async projections, round-robin, one
 *	  batch per projection per round, each batch in its own transaction.
 *
 * The worker sleeps on its latch when there is nothing to do; appending
 * transactions set the latch when they commit, and projections.poll_interval
 * is the fallback.  While committed events wait behind the safe key (an
 * older transaction is still open somewhere in the cluster) it polls more
 * often, and after projections.stall_warning it logs which transaction
 * holds it back.
 *
 * A batch that fails for a reason other than the handler (a serialization
 * failure inside the handler, a lock timeout, running out of memory) is
 * rolled back and retried with exponential back-off for that projection
 * alone; the others go on.  Handler errors are dealt with inside the batch
 * by the projection's on_error policy (apply.c).
 *
 * SIGTERM ends the worker: between batches at once, inside a batch at the
 * next interrupt check, which rolls the batch back.  SIGHUP reloads the
 * configuration.  The worker exits quietly when its extension is dropped,
 * when projections.enabled is turned off, or when a database-level command
 * needs it gone (utility.c); the launcher decides whether to start it again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "projections.h"

#define MIN_RETRY_MS	10
#define MAX_BACKOFF_MS	60000

/* per-projection back-off after a failed batch */
typedef struct Backoff
{
	char		name[NAMEDATALEN];	/* hash key */
	TimestampTz next_attempt;
	int			failures;
} Backoff;

static ProjDbSlot *my_slot = NULL;
static char my_dbname[NAMEDATALEN];

/* the async projections to apply, read again when the catalog changes */
static MemoryContext names_cxt = NULL;
static List *names = NIL;
static uint32 names_version = 0;
static TimestampTz names_at = 0;
static HTAB *backoffs = NULL;
static MemoryContext round_cxt = NULL;

/* the stall being watched: the oldest running transaction and since when */
static TransactionId stall_xid = InvalidTransactionId;
static TimestampTz stall_since = 0;
static bool stall_warned = false;

pg_noreturn static void WorkerExit(ProjWorkerState state);
pg_noreturn static void ExtensionGone(void);

static void
WorkerDetach(int code, Datum arg)
{
	if (my_slot != NULL)
	{
		my_slot->latch = NULL;
		my_slot->pid = 0;
	}
}

static void
WorkerExit(ProjWorkerState state)
{
	my_slot->state = state;
	proc_exit(0);
}

static void
ExtensionGone(void)
{
	ereport(LOG,
			(errmsg("projections worker exiting: the extension is not "
					"installed in database \"%s\"", my_dbname)));
	WorkerExit(PROJ_WORKER_NO_EXTENSION);
}

/*
 * Committed events wait behind the safe key, held by the transaction with
 * xid xmin: log once per holder, after projections.stall_warning, which
 * transaction it is.  Runs inside a transaction.
 */
static void
NoteStall(TransactionId xmin)
{
	TimestampTz now = GetCurrentTimestamp();

	if (xmin != stall_xid)
	{
		stall_xid = xmin;
		stall_since = now;
		stall_warned = false;
		return;
	}
	if (stall_warned || proj_stall_warning_ms <= 0 ||
		!TimestampDifferenceExceeds(stall_since, now, proj_stall_warning_ms))
		return;

	stall_warned = true;
	SPI_connect();
	if (SPI_execute("SELECT description FROM projections._horizon_holder()",
					true, 1) == SPI_OK_SELECT && SPI_processed > 0)
	{
		char	   *what = SPI_getvalue(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1);

		ereport(WARNING,
				(errmsg("projections are held back by %s",
						what ? what : "an open transaction"),
				 errdetail("Events committed after that transaction took its "
						   "transaction id cannot be applied until it ends."),
				 errhint("End it (COMMIT or ROLLBACK, ROLLBACK PREPARED for a "
						 "forgotten prepared transaction, or pg_terminate_backend)."),
				 errhidestmt(true)));
	}
	SPI_finish();
}

/* Nothing waits behind the safe key (any more). */
static void
ClearStall(void)
{
	stall_xid = InvalidTransactionId;
	stall_warned = false;
}

/*
 * Read the names of the projections to apply, in one short transaction.
 * Returns false when the extension is gone.
 */
static bool
RefreshNames(void)
{
	bool		present;

	MemoryContextReset(names_cxt);
	names = NIL;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = ProjLockExtension();
	if (present)
	{
		uint64		i;
		MemoryContext old;

		PushActiveSnapshot(GetTransactionSnapshot());
		SPI_connect();
		ProjExecute(PLAN_LIST_ASYNC, NULL, NULL, false, 0);
		old = MemoryContextSwitchTo(names_cxt);
		for (i = 0; i < SPI_processed; i++)
			names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1));
		MemoryContextSwitchTo(old);
		SPI_finish();
		PopActiveSnapshot();
	}
	CommitTransactionCommand();
	return present;
}

/*
 * Apply one batch of one projection in its own transaction.  Returns true
 * if it may have more events; sets *blocked when committed events wait
 * behind the safe key.
 */
static bool
RunBatch(const char *name, bool *blocked)
{
	Backoff    *backoff;
	bool		found;
	volatile bool more = false;
	volatile bool gone = false;
	char		activity[NAMEDATALEN + 32];

	backoff = hash_search(backoffs, name, HASH_FIND, &found);
	if (found && backoff->next_attempt > GetCurrentTimestamp())
		return false;

	snprintf(activity, sizeof(activity), "applying projection \"%s\"", name);
	pgstat_report_activity(STATE_RUNNING, activity);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (ProjLockExtension())
		{
			bool		has_more;
			bool		is_blocked;

			PushActiveSnapshot(GetTransactionSnapshot());
			(void) ProjApply(name, PROJ_CALLER_WORKER, 0, &has_more, &is_blocked);
			if (is_blocked)
			{
				*blocked = true;
				NoteStall(GetActiveSnapshot()->xmin);
			}
			more = has_more;
			PopActiveSnapshot();
		}
		else
			gone = true;
		CommitTransactionCommand();
		if (found)
		{
			ereport(LOG,
					(errmsg("projections: projection \"%s\" applies again", name)));
			hash_search(backoffs, name, HASH_REMOVE, NULL);
		}
	}
	PG_CATCH();
	{
		int			delay;

		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(round_cxt);
		RESUME_INTERRUPTS();

		backoff = hash_search(backoffs, name, HASH_ENTER, &found);
		if (!found)
			backoff->failures = 0;
		delay = Min(MAX_BACKOFF_MS, 1000 << Min(backoff->failures, 6));
		backoff->failures++;
		backoff->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
		ereport(LOG,
				(errmsg("projections: batch of projection \"%s\" failed, "
						"retrying in %d ms", name, delay)));
		more = false;
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (gone)
		ExtensionGone();
	return more;
}

/*
 * One round: a batch for every active async projection.  The names are read
 * again when a projection changed (the catalog version in shared memory
 * moved) or a poll interval has passed; with no async projection at all, a
 * wakeup by an append costs nothing.
 */
static bool
RunRound(bool *blocked)
{
	uint32		version = pg_atomic_read_u32(&my_slot->catalog_version);
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;
	bool		more = false;

	*blocked = false;
	if (names_at == 0 || version != names_version ||
		TimestampDifferenceExceeds(names_at, now, proj_poll_interval_ms))
	{
		names_version = version;
		names_at = now;
		if (!RefreshNames())
			ExtensionGone();
	}

	MemoryContextReset(round_cxt);
	MemoryContextSwitchTo(round_cxt);
	foreach(lc, names)
	{
		CHECK_FOR_INTERRUPTS();
		if (ProcDiePending)
			break;
		if (RunBatch((const char *) lfirst(lc), blocked))
			more = true;
	}
	if (!*blocked)
		ClearStall();
	return more;
}

/*
 * Whether the extension exists in this database, in a short transaction.
 */
static bool
ExtensionPresent(void)
{
	bool		present;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = ProjExtGet(true) != NULL;
	strlcpy(my_dbname, get_database_name(MyDatabaseId), sizeof(my_dbname));
	CommitTransactionCommand();
	return present;
}

/*
 * Entry point of a database's worker.
 */
void
projections_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	int			slotno;
	HASHCTL		ctl;
	long		retry_ms = MIN_RETRY_MS;

	memcpy(&slotno, MyBgworkerEntry->bgw_extra, sizeof(int));
	my_slot = &ProjSharedState->slots[slotno];

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	my_slot->pid = MyProcPid;
	my_slot->latch = MyLatch;
	before_shmem_exit(WorkerDetach, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("projections worker");

	round_cxt = AllocSetContextCreate(TopMemoryContext, "projections round",
									  ALLOCSET_DEFAULT_SIZES);
	names_cxt = AllocSetContextCreate(TopMemoryContext, "projections names",
									  ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(Backoff);
	backoffs = hash_create("projections back-off", 16, &ctl,
						   HASH_ELEM | HASH_STRINGS);

	if (!ExtensionPresent())
	{
		elog(DEBUG1, "projections worker exiting: no extension in database \"%s\"",
			 my_dbname);
		WorkerExit(PROJ_WORKER_NO_EXTENSION);
	}
	my_slot->state = PROJ_WORKER_RUNNING;
	ereport(LOG,
			(errmsg("projections worker started for database \"%s\"", my_dbname)));

	for (;;)
	{
		bool		blocked = false;
		long		timeout;

		ResetLatch(MyLatch);
		if (ProcDiePending)
			break;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!proj_enabled)
		{
			ereport(LOG,
					(errmsg("projections worker exiting: projections.enabled is off")));
			WorkerExit(PROJ_WORKER_DISABLED);
		}
		if (pg_atomic_read_u32(&my_slot->suspend) > 0)
			WorkerExit(PROJ_WORKER_SUSPENDED);

		if (RunRound(&blocked))
		{
			retry_ms = MIN_RETRY_MS;
			continue;
		}

		/* nothing more for now: sleep until woken, or poll */
		if (blocked)
		{
			timeout = Min(retry_ms, (long) proj_poll_interval_ms);
			retry_ms = Min(retry_ms * 2, (long) proj_poll_interval_ms);
		}
		else
		{
			timeout = proj_poll_interval_ms;
			retry_ms = MIN_RETRY_MS;
		}
		pgstat_report_activity(STATE_IDLE, "waiting for events");
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
	}
	WorkerExit(pg_atomic_read_u32(&my_slot->suspend) > 0 ?
			   PROJ_WORKER_SUSPENDED : PROJ_WORKER_NONE);
}
