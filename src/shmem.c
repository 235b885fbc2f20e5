/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state between backends, the launcher and the workers, and the
 *	  commit-time wakeups.
 *
 * Shared memory holds one slot per database that has (or may get) a worker:
 * the database's OID, the worker's pid and latch, a state for the status
 * view, a suspend counter for database-level commands, and a condition
 * variable that projections.wait() sleeps on.  The launcher assigns slots;
 * each worker fills in its own.
 *
 * A backend that appended events sets the worker's latch when its
 * transaction commits (not before: the worker must find the events), and a
 * backend whose transaction moved a checkpoint wakes the waiters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "projections.h"

ProjShared *ProjSharedState = NULL;

/* what the current transaction did, acted upon at commit */
static bool xact_appended = false;
static bool xact_progressed = false;
static bool xact_poke_launcher = false;
static bool xact_rescan = false;
static bool xact_catalog_changed = false;

/* this backend's slot, found once and checked on each use */
static int	my_slot = -1;

Size
ProjSharedShmemSize(void)
{
	return add_size(offsetof(ProjShared, slots),
					mul_size(proj_max_databases, sizeof(ProjDbSlot)));
}

/*
 * Create or attach to the shared state.
 */
void
ProjSharedShmemInit(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ProjSharedState = ShmemInitStruct("projections", ProjSharedShmemSize(), &found);
	if (!found)
	{
		int			i;

		memset(ProjSharedState, 0, ProjSharedShmemSize());
		ProjSharedState->nslots = proj_max_databases;
		pg_atomic_init_u32(&ProjSharedState->rescan, 1);
		SpinLockInit(&ProjSharedState->mutex);
		for (i = 0; i < proj_max_databases; i++)
		{
			pg_atomic_init_u32(&ProjSharedState->slots[i].suspend, 0);
			pg_atomic_init_u32(&ProjSharedState->slots[i].catalog_version, 0);
			ConditionVariableInit(&ProjSharedState->slots[i].progress);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The slot of a database, or NULL if it has none (no worker has been
 * started for it, or the library is not preloaded).  Slots are assigned by
 * the launcher only; a stale answer costs at most a spurious wakeup.
 */
ProjDbSlot *
ProjSlotForDatabase(Oid dboid)
{
	int			i;

	if (ProjSharedState == NULL || !OidIsValid(dboid))
		return NULL;
	if (dboid == MyDatabaseId && my_slot >= 0 &&
		ProjSharedState->slots[my_slot].dboid == dboid)
		return &ProjSharedState->slots[my_slot];
	for (i = 0; i < ProjSharedState->nslots; i++)
	{
		if (ProjSharedState->slots[i].dboid == dboid)
		{
			if (dboid == MyDatabaseId)
				my_slot = i;
			return &ProjSharedState->slots[i];
		}
	}
	return NULL;
}

/*
 * Ask the launcher to look at the databases again now, and (with
 * this_database) to look for the extension in the current one.
 */
void
ProjWakeLauncher(bool this_database)
{
	Latch	   *latch;

	if (ProjSharedState == NULL)
		return;
	if (this_database && OidIsValid(MyDatabaseId))
	{
		SpinLockAcquire(&ProjSharedState->mutex);
		if (ProjSharedState->nrequests < PROJ_MAX_REQUESTS)
			ProjSharedState->requests[ProjSharedState->nrequests++] = MyDatabaseId;
		else
			ProjSharedState->request_all = true;
		SpinLockRelease(&ProjSharedState->mutex);
	}
	pg_atomic_write_u32(&ProjSharedState->rescan, 1);
	latch = ProjSharedState->launcher_latch;
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Wake this database's worker, if it runs.
 */
void
ProjWakeWorker(void)
{
	ProjDbSlot *slot = ProjSlotForDatabase(MyDatabaseId);
	Latch	   *latch;

	if (slot == NULL)
		return;
	latch = slot->latch;
	if (latch != NULL)
		SetLatch(latch);
}

/* The current transaction appended events: wake the worker at commit. */
void
ProjNoteAppend(void)
{
	xact_appended = true;
}

/* The current transaction moved a checkpoint: wake waiters at commit. */
void
ProjNoteProgress(void)
{
	xact_progressed = true;
}

/* The current transaction changed a projection: the worker looks again. */
void
ProjNoteCatalogChange(void)
{
	xact_catalog_changed = true;
}

/* The current transaction created the extension. */
void
ProjNoteLauncherPoke(void)
{
	xact_poke_launcher = true;
}

/* The current transaction created a database. */
void
ProjNoteDatabaseCreated(void)
{
	xact_rescan = true;
}

/*
 * Transaction callback: after commit, wake whoever needs to know.
 */
void
ProjXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (ProjSharedState != NULL)
			{
				if (xact_catalog_changed)
				{
					ProjDbSlot *slot = ProjSlotForDatabase(MyDatabaseId);

					if (slot != NULL)
						pg_atomic_fetch_add_u32(&slot->catalog_version, 1);
				}
				if (xact_appended || xact_catalog_changed)
					ProjWakeWorker();
				if (xact_progressed)
				{
					ProjDbSlot *slot = ProjSlotForDatabase(MyDatabaseId);

					if (slot != NULL)
						ConditionVariableBroadcast(&slot->progress);
				}
				if (xact_poke_launcher || xact_rescan)
					ProjWakeLauncher(xact_poke_launcher);
			}
			xact_appended = xact_progressed = xact_poke_launcher = xact_rescan =
				xact_catalog_changed = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			xact_appended = xact_progressed = xact_poke_launcher = xact_rescan =
				xact_catalog_changed = false;
			break;
		default:
			break;
	}
}

/*
 * Whether async projections are applied by a worker in this server.
 */
bool
ProjWorkerExpected(void)
{
	return ProjSharedState != NULL && proj_enabled;
}

const char *
ProjWorkerStateName(int state)
{
	switch (state)
	{
		case PROJ_WORKER_STARTING:
			return "starting";
		case PROJ_WORKER_RUNNING:
			return "running";
		case PROJ_WORKER_NO_SLOT:
			return "waiting for a background worker slot";
		case PROJ_WORKER_NO_EXTENSION:
			return "no extension";
		case PROJ_WORKER_DISABLED:
			return "disabled";
		case PROJ_WORKER_SUSPENDED:
			return "suspended";
		default:
			return "not started";
	}
}
