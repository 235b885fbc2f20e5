/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database workers: they apply async projections and build the
 *	  new models of online rebuilds, one batch per projection per round,
 *	  each batch in its own transaction.
 *
 * The launcher starts a database's first worker (index 0, the leader).
 * While at least two projections have more than a batch to do, the leader
 * starts more workers, up to projections.workers_per_database; they run
 * the same loop and exit after a while without work.  Each projection is
 * applied by one process at a time (its applier lock; a worker that finds
 * it taken moves on), so projections catch up in parallel, and a rebuild
 * delays the others by at most a batch.  When no background worker slot is
 * free, the database is served by fewer workers.
 *
 * A worker sleeps on its latch when there is nothing to do; appending
 * transactions set the latches when they commit, and
 * projections.poll_interval is the fallback.  While committed events wait
 * behind the safe key (an older transaction is still open somewhere in the
 * cluster) it polls more often, and after projections.stall_warning the
 * leader logs which transaction holds it back.  It also polls more often
 * while a projection it would apply was locked by another process (a change
 * of a projection wakes the workers as it commits, before its locks go).
 * Each wakeup starts the back-off over.
 *
 * A batch that fails for a reason other than the handler (a serialization
 * failure or deadlock inside the handler, a lock timeout, running out of
 * memory) is rolled back and retried with exponential back-off for that
 * projection alone, at most projections.max_retries times; then the
 * projection is marked failed with that error.  Handler errors are dealt
 * with inside the batch by the projection's on_error policy (apply.c).
 *
 * SIGTERM ends a worker: between batches at once, inside a batch at the
 * next interrupt check, which rolls the batch back.  SIGHUP reloads the
 * configuration.  Workers exit quietly when their extension is dropped or
 * waits for ALTER EXTENSION UPDATE, when projections.enabled is turned off,
 * or when a database-level command needs them gone (utility.c); the
 * launcher decides whether to start the leader again.
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
#include "settings.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "apply.h"
#include "catalog.h"
#include "compat.h"
#include "keys.h"
#include "launcher.h"
#include "rebuild.h"
#include "registry.h"
#include "shmem.h"
#include "worker.h"

#define MIN_RETRY_MS			10
#define PLAN_RESET_INTERVAL_MS	10000	/* plan handler statements afresh */
#define HELPER_IDLE_MS			10000	/* a helper without work exits */
#define HELPER_RETRY_MS			10000	/* after finding no worker slot */

/* one thing to apply: a projection's live model, or its rebuild */
typedef struct Unit
{
	char		name[NAMEDATALEN];
	bool		build;
} Unit;

/* back-off after a failed batch of a unit (hash key: the unit) */
typedef struct Backoff
{
	Unit		unit;
	TimestampTz next_attempt;
	int			failures;
} Backoff;

static int	my_index = 0;
static char my_dbname[NAMEDATALEN];

/* the units to apply, read again when the catalog changes */
static MemoryContext units_cxt = NULL;
static Unit *units = NULL;
static int	nunits = 0;
static int	nbuilds = 0;		/* units that are rebuilds (plain or online) */
static uint32 units_version = 0;
static TimestampTz units_at = 0;
static HTAB *backoffs = NULL;
static MemoryContext round_cxt = NULL;
static TimestampTz last_plan_reset = 0;

/* the leader's helpers */
static BackgroundWorkerHandle *helpers[PROJ_MAX_WORKERS_PER_DB];
static TimestampTz helper_retry_at = 0;
static bool helper_slot_warned = false;

/* the stall being watched: the oldest running transaction and since when */
static TransactionId stall_xid = InvalidTransactionId;
static TimestampTz stall_since = 0;
static bool stall_warned = false;

static ProjStatement horizon_holder_stmt = {
	"SELECT h.description FROM projections._horizon_holder() h", 0
};

pg_noreturn static void WorkerExit(ProjWorkerState state);
static void ManageHelpers(int busy);
pg_noreturn static void ExtensionGone(void);

static void
WorkerExit(ProjWorkerState state)
{
	ProjWorkerSetState(state);
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

static void
ExtensionOld(void)
{
	ereport(LOG,
			(errmsg("projections worker exiting: extension \"%s\" in database \"%s\" "
					"must be updated to version %s",
					PROJ_EXTENSION_NAME, my_dbname, PROJ_SQL_VERSION),
			 errhint("Run ALTER EXTENSION %s UPDATE.", PROJ_EXTENSION_NAME)));
	WorkerExit(PROJ_WORKER_NEEDS_UPDATE);
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
	ProjRun(&horizon_holder_stmt, NULL, NULL, false, 1);
	if (SPI_processed > 0)
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
 * Read the units to apply, in one short transaction; the leader also
 * checks the key offset (a restore may have put keys ahead of it).
 */
static void
RefreshUnits(void)
{
	bool		present;
	bool		current = false;

	MemoryContextReset(units_cxt);
	units = NULL;
	nunits = 0;
	nbuilds = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = ProjLockExtension();
	if (present)
		current = ProjExtGet(false)->current;
	if (present && current)
	{
		List	   *defs;
		ListCell   *lc;
		bool		builds;
		MemoryContext old;

		PushActiveSnapshot(GetTransactionSnapshot());
		if (my_index == 0)
		{
			ProjKeyOffsetForget();
			/* (an appender left idle must not stop every append behind us) */
			if (ProjKeyOffsetStale())
				(void) ProjRepairKeyOffset(proj_inline_switch_timeout_ms);
		}
		defs = ProjCatalogListRunnable(&builds);
		old = MemoryContextSwitchTo(units_cxt);
		units = palloc0(sizeof(Unit) * Max(list_length(defs) * 2, 1));
		foreach(lc, defs)
		{
			ProjectionDef *def = (ProjectionDef *) lfirst(lc);

			if (def->state == PROJ_STATE_ACTIVE && !def->inline_active)
			{
				strlcpy(units[nunits].name, def->name, NAMEDATALEN);
				units[nunits++].build = false;
				if (def->rebuilding)
					nbuilds++;
			}
			if (def->build_schema != NULL)
			{
				strlcpy(units[nunits].name, def->name, NAMEDATALEN);
				units[nunits++].build = true;
				nbuilds++;
			}
		}
		MemoryContextSwitchTo(old);
		PopActiveSnapshot();
	}
	CommitTransactionCommand();
	if (!present)
		ExtensionGone();
	if (!current)
		ExtensionOld();
}

/*
 * A unit failed max_retries + 1 times in a row: mark it failed with the
 * error, in a transaction of its own (a rebuild stops and its shadow model
 * is dropped).
 */
static void
GiveUp(const Unit *unit, ErrorData *edata)
{
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (ProjLockExtension())
		{
			ProjectionDef def;

			(void) ProjCatalogLock(unit->name, unit->build ? PROJ_TARGET_BUILD :
								   PROJ_TARGET_LIVE, true);
			if (ProjCatalogLoad(unit->name, &def))
			{
				if (unit->build && def.build_schema != NULL)
				{
					ProjRebuildCancel(&def);
					ProjCatalogRecordError(unit->name,
										   psprintf("online rebuild stopped: %s", edata->message),
										   edata->sqlerrcode, 0, false);
				}
				else if (!unit->build)
					ProjCatalogRecordError(unit->name, edata->message,
										   edata->sqlerrcode, 0, true);
				ProjNoteCatalogChange();
			}
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(round_cxt);
		ereport(LOG,
				(errmsg("projections: %s of projection \"%s\" failed %d times in a row; "
						"marked failed: %s",
						unit->build ? "online rebuild" : "batch", unit->name,
						proj_max_retries + 1, edata->message),
				 errhint("Fix the cause, then call projections.resume(%s)%s.",
						 quote_literal_cstr(unit->name),
						 unit->build ? " and start the rebuild again" : "")));
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(round_cxt);
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
}

/*
 * Apply one batch of one unit in its own transaction.  Returns true if it
 * may have more to do; sets *blocked when committed events wait behind the
 * safe key.
 */
static bool
RunUnit(const Unit *unit, bool *blocked, bool *locked_out)
{
	Backoff    *backoff;
	Unit		key;
	bool		found;
	int			crashes;
	volatile bool more = false;
	volatile bool gone = false;
	char		activity[NAMEDATALEN + 64];
	TimestampTz now = GetCurrentTimestamp();

	memset(&key, 0, sizeof(key));
	strlcpy(key.name, unit->name, NAMEDATALEN);
	key.build = unit->build;
	backoff = hash_search(backoffs, &key, HASH_FIND, &found);
	if (found && backoff->next_attempt > now)
		return false;
	if (ProjWorkerOtherApplying(unit->name, unit->build))
		return false;

	/*
	 * Workers kept exiting while they applied this unit (an error no catch
	 * block sees: a handler can make its errors end the process, e.g. with
	 * exit_on_error): after max_retries, it is marked failed like a unit
	 * whose batches keep failing, and the others go on.
	 */
	crashes = ProjWorkerCrashes(unit->name, unit->build, false);
	if (crashes > proj_max_retries)
	{
		ErrorData	crash;

		memset(&crash, 0, sizeof(crash));
		crash.sqlerrcode = ERRCODE_OPERATOR_INTERVENTION;
		crash.message = psprintf("the worker exited %d times while applying it "
								 "(an error that ended the process: see the server log)",
								 crashes);
		GiveUp(unit, &crash);
		(void) ProjWorkerCrashes(unit->name, unit->build, true);
		return false;
	}

	/*
	 * Plan the handlers' statements afresh now and then: a read model that
	 * was empty when they were planned would otherwise keep plans that scan
	 * it whole, and catching up would slow down as it grows.
	 */
	if (TimestampDifferenceExceeds(last_plan_reset, now, PLAN_RESET_INTERVAL_MS))
	{
		ResetPlanCache();
		last_plan_reset = now;
	}

	snprintf(activity, sizeof(activity), unit->build ?
			 "building projection \"%s\" (online rebuild)" :
			 "applying projection \"%s\"", unit->name);
	pgstat_report_activity(STATE_RUNNING, activity);
	ProjWorkerSetApplying(unit->name, unit->build);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (ProjLockExtension())
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			if (unit->build)
			{
				int64		applied;
				bool		out;

				more = ProjRebuildStep(unit->name, false, &applied, &out);
				if (out)
					*locked_out = true;
			}
			else
			{
				ProjApplyResult result;

				ProjApply(unit->name, PROJ_TARGET_LIVE, PROJ_CALLER_WORKER, 0, &result);
				if (result.blocked)
				{
					*blocked = true;
					if (my_index == 0)
						NoteStall(GetActiveSnapshot()->xmin);
				}
				if (result.locked_out)
					*locked_out = true;
				more = result.more;
			}
			PopActiveSnapshot();
		}
		else
			gone = true;
		CommitTransactionCommand();
		if (crashes > 0)
			(void) ProjWorkerCrashes(unit->name, unit->build, true);
		if (found)
		{
			ereport(LOG,
					(errmsg("projections: projection \"%s\" applies again", unit->name)));
			hash_search(backoffs, &key, HASH_REMOVE, NULL);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			delay;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(round_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(round_cxt);
		RESUME_INTERRUPTS();

		backoff = hash_search(backoffs, &key, HASH_ENTER, &found);
		if (!found)
			backoff->failures = 0;
		backoff->failures++;
		if (backoff->failures > proj_max_retries)
		{
			GiveUp(unit, edata);
			hash_search(backoffs, &key, HASH_REMOVE, NULL);
		}
		else
		{
			delay = ProjBackoffMs(backoff->failures - 1);
			backoff->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
			ereport(LOG,
					(errmsg("projections: %s of projection \"%s\" failed, retrying in %d ms "
							"(%d of %d)",
							unit->build ? "online rebuild" : "batch", unit->name, delay,
							backoff->failures, proj_max_retries)));
		}
		more = false;
	}
	PG_END_TRY();
	ProjWorkerSetApplying(NULL, false);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (gone)
		ExtensionGone();
	return more;
}

/*
 * One round: a batch for every unit.  The units are read again when a
 * projection changed (the catalog version in shared memory moved) or a
 * poll interval has passed; with no async projection at all, a wakeup by
 * an append costs nothing.  Each worker starts its rounds at another unit,
 * one further on after each exit while applying (see ProjWorkerRoundStart).
 * Returns how many units have more to do; *locked_out says that a unit was
 * skipped because another process held its lock (a session's change of the
 * projection not yet released, run() in an open transaction, or another
 * worker: the live model's lock at an online rebuild's exchange).
 */
static int
RunRound(bool *blocked, bool *locked_out)
{
	uint32		version = ProjWorkerCatalogVersion();
	TimestampTz now = GetCurrentTimestamp();
	int			busy = 0;
	int			start;
	int			i;

	*blocked = false;
	*locked_out = false;
	if (units_at == 0 || version != units_version ||
		TimestampDifferenceExceeds(units_at, now, proj_poll_interval_ms))
	{
		units_version = version;
		units_at = now;
		RefreshUnits();
	}

	MemoryContextReset(round_cxt);
	MemoryContextSwitchTo(round_cxt);
	/*
	 * A rebuild has work for a long while: its helper comes now, not after
	 * the rebuild's first batch (so live projections do not wait for that
	 * batch).
	 */
	if (my_index == 0 && nbuilds > 0)
		ManageHelpers(nbuilds);
	start = ProjWorkerRoundStart(nunits);
	for (i = 0; i < nunits; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (ProcDiePending)
			break;
		if (RunUnit(&units[(start + i) % nunits], blocked, locked_out))
			busy++;
	}
	if (!*blocked)
		ClearStall();
	return busy;
}

/* How many processes may apply this database's projections. */
static int
WorkersWanted(void)
{
	return Max(1, Min(proj_workers_per_database, PROJ_MAX_WORKERS_PER_DB));
}

/*
 * The leader: start another worker while fewer processes run than the
 * units with work, plus one for the others when there are others (so that
 * a long catch-up or rebuild does not hold up the live projections), up to
 * projections.workers_per_database.  Without a free background worker
 * slot, go on with fewer (and say so once).
 */
static void
ManageHelpers(int busy)
{
	int			running = 1;
	int			free_index = -1;
	int			wanted = Min(nunits, busy + (nunits > busy ? 1 : 0));
	int			i;

	for (i = 1; i < PROJ_MAX_WORKERS_PER_DB; i++)
	{
		pid_t		pid;

		if (helpers[i] != NULL &&
			GetBackgroundWorkerPid(helpers[i], &pid) == BGWH_STOPPED)
		{
			pfree(helpers[i]);
			helpers[i] = NULL;
		}
		if (helpers[i] != NULL)
			running++;
		else if (free_index < 0 && i < WorkersWanted())
			free_index = i;
	}
	if (busy < 1 || running >= wanted || running >= WorkersWanted() || free_index < 0 ||
		GetCurrentTimestamp() < helper_retry_at)
		return;

	if (!ProjRegisterWorker(MyDatabaseId, ProjWorkerSlot(), free_index, &helpers[free_index]))
	{
		helpers[free_index] = NULL;
		helper_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  HELPER_RETRY_MS);
		if (!helper_slot_warned)
			ereport(WARNING,
					(errmsg("projections: no background worker slot for another worker "
							"in database \"%s\"; %d process(es) apply its projections",
							my_dbname, running),
					 errhint("Increase max_worker_processes (restart), or lower "
							 "projections.workers_per_database.")));
		helper_slot_warned = true;
		return;
	}
	helper_slot_warned = false;
}

/*
 * Whether the extension exists in this database (and is of this library's
 * version), in a short transaction.
 */
static bool
ExtensionPresent(bool *current)
{
	const ProjExtInfo *ext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	ext = ProjExtGet(true);
	*current = ext != NULL && ext->current;
	strlcpy(my_dbname, get_database_name(MyDatabaseId), sizeof(my_dbname));
	CommitTransactionCommand();
	return ext != NULL;
}

/*
 * Settings a database's or role's defaults could give the worker session
 * that would change what it does: the worker runs with its own.
 */
static void
PinSessionSettings(void)
{
	SetConfigOption("search_path", PROJ_SAFE_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("session_replication_role", "origin", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Entry point of a database's worker (bgw_extra: the database's slot and
 * this worker's index).
 */
void
projections_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	int			slot;
	HASHCTL		ctl;
	long		retry_ms = MIN_RETRY_MS;
	TimestampTz idle_since = 0;
	bool		current;

	memcpy(&slot, MyBgworkerEntry->bgw_extra, sizeof(int));
	memcpy(&my_index, MyBgworkerEntry->bgw_extra + sizeof(int), sizeof(int));

	pqsignal(SIGTERM, ProjWorkerSigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/* (a duplicate, started by a launcher that did not know of us: go) */
	if (!ProjWorkerAttach(slot, my_index, dboid))
		proc_exit(0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("projections worker");
	PinSessionSettings();

	round_cxt = AllocSetContextCreate(TopMemoryContext, "projections round",
									  ALLOCSET_DEFAULT_SIZES);
	units_cxt = AllocSetContextCreate(TopMemoryContext, "projections units",
									  ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Unit);
	ctl.entrysize = sizeof(Backoff);
	backoffs = hash_create("projections back-off", 16, &ctl,
						   HASH_ELEM | HASH_BLOBS);
	last_plan_reset = GetCurrentTimestamp();

	if (!ExtensionPresent(&current))
	{
		elog(DEBUG1, "projections worker exiting: no extension in database \"%s\"",
			 my_dbname);
		WorkerExit(PROJ_WORKER_NO_EXTENSION);
	}
	if (!current)
		ExtensionOld();
	ProjWorkerSetState(PROJ_WORKER_RUNNING);
	if (my_index == 0)
		ereport(LOG,
				(errmsg("projections worker started for database \"%s\"", my_dbname)));

	for (;;)
	{
		bool		blocked = false;
		bool		locked_out = false;
		long		timeout;
		int			busy;

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
			if (my_index == 0)
				ereport(LOG,
						(errmsg("projections worker exiting: projections.enabled is off")));
			WorkerExit(PROJ_WORKER_DISABLED);
		}
		if (ProjWorkerSuspended())
			WorkerExit(PROJ_WORKER_SUSPENDED);
		if (my_index > 0 && (my_index >= WorkersWanted() || !ProjWorkerRunning(0)))
			proc_exit(0);

		busy = RunRound(&blocked, &locked_out);
		if (my_index == 0)
			ManageHelpers(busy);
		if (busy > 0)
		{
			retry_ms = MIN_RETRY_MS;
			idle_since = 0;
			continue;
		}

		/*
		 * A helper without work for a while goes (not during a rebuild, nor
		 * while another worker is busy: it serves the others meanwhile).
		 */
		if (my_index > 0 && (nbuilds > 0 || ProjWorkerOthersBusy()))
			idle_since = 0;
		else if (my_index > 0)
		{
			TimestampTz now = GetCurrentTimestamp();

			if (idle_since == 0)
				idle_since = now;
			else if (TimestampDifferenceExceeds(idle_since, now, HELPER_IDLE_MS))
				proc_exit(0);
		}

		/*
		 * Nothing more for now: sleep until woken, or poll.  Soon, backing
		 * off, while events wait behind the safe key or another process
		 * held a projection's lock: register(), resume(), rebuild() and the
		 * like wake the workers as they commit, a moment before their locks
		 * are released, and run() in an open transaction holds its lock for
		 * as long as that lasts.  A wakeup starts the back-off over: the
		 * commit that ends a long-held lock wakes the workers just before
		 * it releases it.
		 */
		if (blocked || locked_out)
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
		if (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					  timeout, PG_WAIT_EXTENSION) & WL_LATCH_SET)
			retry_ms = MIN_RETRY_MS;
	}
	WorkerExit(ProjWorkerSuspended() ? PROJ_WORKER_SUSPENDED : PROJ_WORKER_NONE);
}
