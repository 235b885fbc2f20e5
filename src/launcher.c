/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one background worker per cluster that starts one
 *	  worker per database that has the extension.
 *
 * The launcher is registered from _PG_init when the library is in
 * shared_preload_libraries.  It connects to no database and reads only the
 * shared catalog pg_database.  A database it has not seen before is probed:
 * a worker is started there, and exits at once (code 0, no restart) if the
 * extension is not installed.  CREATE EXTENSION projections and CREATE
 * DATABASE wake the launcher when they commit, so a new database is served
 * without a restart; it also rescans pg_database every few seconds.
 *
 * Workers are dynamic and never restarted by the postmaster: the launcher
 * restarts one that stopped unexpectedly, with exponential back-off, and
 * leaves alone one that stopped because its extension or its database is
 * gone, because projections.enabled is off, because the extension waits
 * for ALTER EXTENSION UPDATE, or because a database-level command asked it
 * to (see utility.c).  A launcher that starts again (terminated, or after
 * an error) takes over the workers it finds in the databases' slots and
 * watches them by pid.  Template databases and databases that refuse
 * connections are never connected to.  The launcher starts each database's
 * first worker; when projections.workers_per_database allows more, that
 * worker starts the others (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "settings.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "launcher.h"
#include "shmem.h"

#define RESCAN_INTERVAL_MS	10000
#define NO_SLOT_RETRY_MS	5000
#define HEALTHY_RUN_MS		60000	/* a worker that ran this long was fine */

typedef enum LauncherDbStatus
{
	DB_PROBE,					/* start a worker to look for the extension */
	DB_RUNNING,					/* a worker is registered */
	DB_ADOPTED,					/* a worker found running (started by an earlier
								 * launcher), watched by its pid */
	DB_RETRY,					/* start again at next_start */
	DB_NO_EXTENSION				/* nothing to do until asked */
} LauncherDbStatus;

typedef struct LauncherDb
{
	Oid			dboid;			/* hash key */
	LauncherDbStatus status;
	int			slot;			/* index in shared slots, or -1 */
	BackgroundWorkerHandle *handle;
	TimestampTz next_start;
	TimestampTz started;		/* when the running worker was started */
	int			failures;
	bool		seen;			/* present in the last scan */
	bool		warned;			/* logged that no slot was free */
} LauncherDb;

static HTAB *launcher_dbs = NULL;

/*
 * Register the launcher; called from _PG_init under shared_preload_libraries.
 */
void
ProjRegisterLauncher(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 10;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "projections");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "projections_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "projections launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "projections launcher");
	RegisterBackgroundWorker(&bgw);
}

/* Free a database's slot; false while a worker still runs there. */
static bool
ReleaseSlot(LauncherDb *db)
{
	if (db->slot >= 0)
	{
		if (!ProjSlotRelease(db->slot))
			return false;
		db->slot = -1;
	}
	return true;
}

/*
 * Read pg_database: note new databases (to probe) and forget dropped ones.
 */
static void
ScanDatabases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	HASH_SEQ_STATUS seq;
	LauncherDb *db;

	hash_seq_init(&seq, launcher_dbs);
	while ((db = hash_seq_search(&seq)) != NULL)
		db->seen = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tup);
		bool		found;

		if (!form->datallowconn || form->datistemplate ||
			form->datconnlimit == DATCONNLIMIT_INVALID_DB)
			continue;
		db = hash_search(launcher_dbs, &form->oid, HASH_ENTER, &found);
		if (!found)
		{
			db->status = DB_PROBE;
			db->slot = ProjSlotOf(form->oid);
			db->handle = NULL;
			db->next_start = 0;
			db->started = GetCurrentTimestamp();
			db->failures = 0;
			db->warned = false;
			/* a launcher that started again takes over the running workers */
			if (db->slot >= 0 && ProjSlotLeaderPid(db->slot) != 0)
				db->status = DB_ADOPTED;
		}
		db->seen = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	hash_seq_init(&seq, launcher_dbs);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		if (db->seen || db->status == DB_RUNNING || db->status == DB_ADOPTED)
			continue;
		if (ReleaseSlot(db))
			hash_search(launcher_dbs, &db->dboid, HASH_REMOVE, NULL);
	}
	elog(DEBUG1, "projections launcher: scanned pg_database, %ld databases known",
		 hash_get_num_entries(launcher_dbs));
}

/*
 * Databases that created the extension since we last looked: probe them.
 */
static void
TakeRequests(void)
{
	Oid			requests[32];
	int			n;
	bool		all;
	int			i;
	HASH_SEQ_STATUS seq;
	LauncherDb *db;

	n = ProjTakeRequests(requests, lengthof(requests), &all);

	for (i = 0; i < n; i++)
	{
		db = hash_search(launcher_dbs, &requests[i], HASH_FIND, NULL);
		if (db != NULL && db->status == DB_NO_EXTENSION)
			db->status = DB_PROBE;
	}
	if (all)
	{
		hash_seq_init(&seq, launcher_dbs);
		while ((db = hash_seq_search(&seq)) != NULL)
			if (db->status == DB_NO_EXTENSION)
				db->status = DB_PROBE;
	}
}

/*
 * Register a worker of a database: its slot in shared memory and its index
 * there (0 leads the database's workers).  The caller is notified when it
 * stops; the handle lives until the caller frees it.  Returns false when no
 * background worker slot is free.
 */
bool
ProjRegisterWorker(Oid dboid, int slot, int index, BackgroundWorkerHandle **handle)
{
	BackgroundWorker bgw;
	MemoryContext old;
	bool		registered;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "projections");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "projections_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "projections worker %d for database %u",
			 index, dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "projections worker");
	bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
	memcpy(bgw.bgw_extra, &slot, sizeof(int));
	memcpy(bgw.bgw_extra + sizeof(int), &index, sizeof(int));
	bgw.bgw_notify_pid = MyProcPid;
	old = MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&bgw, handle);
	MemoryContextSwitchTo(old);
	return registered;
}

/*
 * Start the first worker of one database.
 */
static void
StartWorker(LauncherDb *db, TimestampTz now)
{
	if (db->slot < 0)
		db->slot = ProjSlotAllocate(db->dboid);
	if (db->slot < 0)
	{
		if (!db->warned)
			ereport(WARNING,
					(errmsg("projections: no slot for database %u", db->dboid),
					 errdetail("projections.max_databases (%d) databases already have a worker.",
							   proj_max_databases),
					 errhint("Increase projections.max_databases.")));
		db->warned = true;
		db->status = DB_RETRY;
		db->next_start = TimestampTzPlusMilliseconds(now, NO_SLOT_RETRY_MS);
		return;
	}
	if (!ProjRegisterWorker(db->dboid, db->slot, 0, &db->handle))
	{
		elog(DEBUG1, "projections launcher: no background worker slot for database %u",
			 db->dboid);
		if (ProjSlotState(db->slot) != PROJ_WORKER_NO_SLOT)
			ereport(WARNING,
					(errmsg("projections: no background worker slot free for database %u",
							db->dboid),
					 errhint("Increase max_worker_processes; the worker starts "
							 "as soon as a slot frees.")));
		ProjSlotSetState(db->slot, PROJ_WORKER_NO_SLOT);
		db->handle = NULL;
		db->status = DB_RETRY;
		db->next_start = TimestampTzPlusMilliseconds(now, NO_SLOT_RETRY_MS);
		return;
	}
	if (ProjSlotState(db->slot) == PROJ_WORKER_NO_SLOT)
		ereport(LOG,
				(errmsg("projections: background worker slot found for database %u",
						db->dboid)));
	ProjSlotSetState(db->slot, PROJ_WORKER_STARTING);
	db->status = DB_RUNNING;
	db->started = now;
}

/*
 * A worker has stopped: decide, from what it left in its slot, whether and
 * when to start it again.
 */
static void
WorkerStopped(LauncherDb *db, TimestampTz now)
{
	int			delay;

	if (db->handle != NULL)
		pfree(db->handle);
	db->handle = NULL;
	switch (ProjSlotState(db->slot))
	{
		case PROJ_WORKER_NO_EXTENSION:
		case PROJ_WORKER_NEEDS_UPDATE:
			db->status = DB_NO_EXTENSION;
			db->failures = 0;
			(void) ReleaseSlot(db); /* (or later: a helper may still run) */
			return;
		case PROJ_WORKER_DISABLED:
		case PROJ_WORKER_SUSPENDED:
			db->status = DB_PROBE;
			db->failures = 0;
			return;
		default:
			/* crashed, failed to connect, or the database is going away */
			if (TimestampDifferenceExceeds(db->started, now, HEALTHY_RUN_MS))
				db->failures = 0;	/* it had run fine: start the back-off over */
			delay = ProjBackoffMs(db->failures);
			db->failures++;
			db->status = DB_RETRY;
			db->next_start = TimestampTzPlusMilliseconds(now, delay);
			return;
	}
}

/*
 * Start, check and restart workers.  Returns how long to sleep.
 */
static long
ManageWorkers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		sleep_ms = RESCAN_INTERVAL_MS;
	HASH_SEQ_STATUS seq;
	LauncherDb *db;

	hash_seq_init(&seq, launcher_dbs);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		if (db->status == DB_RUNNING)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(db->handle, &pid) == BGWH_STOPPED)
				WorkerStopped(db, now);
		}
		else if (db->status == DB_ADOPTED)
		{
			/* (its exit sets our latch) */
			if (ProjSlotLeaderPid(db->slot) == 0)
				WorkerStopped(db, now);
		}
		if (db->status == DB_NO_EXTENSION && db->slot >= 0)
			(void) ReleaseSlot(db);

		if (db->status == DB_PROBE || db->status == DB_RETRY)
		{
			if (!proj_enabled)
				continue;
			if (db->slot >= 0 && ProjSlotSuspended(db->slot))
			{
				sleep_ms = Min(sleep_ms, 100);
				continue;
			}
			if (db->status == DB_RETRY && db->next_start > now)
			{
				long		secs;
				int			usecs;

				TimestampDifference(now, db->next_start, &secs, &usecs);
				sleep_ms = Min(sleep_ms, secs * 1000 + usecs / 1000 + 1);
				continue;
			}
			StartWorker(db, now);
		}
	}
	return sleep_ms;
}

/*
 * Entry point of the launcher.
 */
void
projections_launcher_main(Datum main_arg)
{
	HASHCTL		ctl;
	TimestampTz next_scan = 0;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("projections launcher");

	ProjLauncherAttach();

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(LauncherDb);
	launcher_dbs = hash_create("projections launcher databases", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS);

	ereport(LOG, (errmsg("projections launcher started")));

	for (;;)
	{
		TimestampTz now;
		long		sleep_ms;

		ResetLatch(MyLatch);
		if (ProcDiePending)
			break;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		if (ProjTakeRescan() || now >= next_scan)
		{
			ScanDatabases();
			TakeRequests();
			next_scan = TimestampTzPlusMilliseconds(now, RESCAN_INTERVAL_MS);
		}
		sleep_ms = ManageWorkers();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
	}
	/* exit 1: the postmaster starts the launcher again unless shutting down */
	proc_exit(1);
}
