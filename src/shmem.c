/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state between backends, the launcher and the workers, and the
 *	  commit-time wakeups.
 *
 * Shared memory holds one slot per database that has (or may get) workers:
 * the database's OID, a state for the status view, a suspend counter for
 * database-level commands, a catalog version bumped by every change to a
 * projection, a condition variable that projections.wait() sleeps on, and
 * one entry per worker process of the database (pid, latch, and what it is
 * applying now).  The launcher assigns slots and starts each database's
 * first worker; that worker starts the others.  The structures are private
 * to this file: everything else goes through the functions below.
 *
 * A backend that appended events wakes the database's workers when its
 * transaction commits (not before: the workers must find the events), and
 * a backend whose transaction moved a checkpoint wakes the waiters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "settings.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "shmem.h"

#define PROJ_MAX_REQUESTS	16
#define PROJ_MAX_CRASHES	8
#define SUSPEND_WAIT_MS		10000

typedef struct ProjWorkerEntry
{
	pid_t		pid;			/* 0 when not running */
	Latch	   *latch;
	bool		build;			/* applying the shadow model of ... */
	char		applying[NAMEDATALEN];	/* ... this projection ("" if none) */
	TransactionId build_xid;	/* its transaction replaying the history (a
								 * rebuild), which appends no event */
} ProjWorkerEntry;

/*
 * A unit (a projection's live or new model) that workers were applying when
 * they exited with an error that no handler of ours could catch (a FATAL
 * error, or an error when exit_on_error is on), and how many times in a row.
 */
typedef struct ProjCrash
{
	char		name[NAMEDATALEN];	/* "" when the entry is free */
	bool		build;
	int			count;
} ProjCrash;

typedef struct ProjDbSlot
{
	Oid			dboid;			/* InvalidOid when the slot is free */
	int			state;			/* a ProjWorkerState */
	pg_atomic_uint32 suspend;	/* > 0: a database-level command needs them gone */
	pg_atomic_uint32 catalog_version;	/* bumped by each change to the catalog */
	ConditionVariable progress; /* broadcast after each committed batch */
	ConditionVariable exited;	/* broadcast when a worker exits */
	slock_t		mutex;			/* protects workers[].applying and build, crashes */
	pg_atomic_uint32 exits;		/* exits while applying, ever: where rounds start */
	ProjWorkerEntry workers[PROJ_MAX_WORKERS_PER_DB];
	ProjCrash	crashes[PROJ_MAX_CRASHES];
} ProjDbSlot;

typedef struct ProjShared
{
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	pg_atomic_uint32 rescan;	/* ask the launcher to look at databases */
	slock_t		mutex;			/* protects the requests below */
	int			nrequests;		/* databases that just created the extension */
	bool		request_all;	/* requests overflowed: probe every database */
	Oid			requests[PROJ_MAX_REQUESTS];
	int			nslots;
	ProjDbSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} ProjShared;

static ProjShared *shared = NULL;

/* this process's worker entry, if it is a worker */
static ProjDbSlot *my_slot = NULL;
static int	my_index = -1;

/* this worker was asked to exit (SIGTERM): its exit is no crash */
static volatile sig_atomic_t worker_terminating = false;

/* this worker's transaction published its xid as a new model's builder */
static bool xact_build_published = false;

/* the slot of this backend's database, found once and checked on each use */
static int	db_slot = -1;

/* what the current transaction did, acted upon at commit */
static bool xact_appended = false;
static bool xact_progressed = false;
static bool xact_poke_launcher = false;
static bool xact_rescan = false;
static bool xact_catalog_changed = false;

Size
ProjShmemSize(void)
{
	return add_size(offsetof(ProjShared, slots),
					mul_size(proj_max_databases, sizeof(ProjDbSlot)));
}

/*
 * Create or attach to the shared state.
 */
void
ProjShmemInit(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("projections", ProjShmemSize(), &found);
	if (!found)
	{
		int			i;

		memset(shared, 0, ProjShmemSize());
		shared->nslots = proj_max_databases;
		pg_atomic_init_u32(&shared->rescan, 1);
		SpinLockInit(&shared->mutex);
		for (i = 0; i < proj_max_databases; i++)
		{
			ProjDbSlot *slot = &shared->slots[i];

			pg_atomic_init_u32(&slot->suspend, 0);
			pg_atomic_init_u32(&slot->catalog_version, 0);
			pg_atomic_init_u32(&slot->exits, 0);
			ConditionVariableInit(&slot->progress);
			ConditionVariableInit(&slot->exited);
			SpinLockInit(&slot->mutex);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Whether the library was preloaded (shared state exists). */
bool
ProjShmemAttached(void)
{
	return shared != NULL;
}

/* Whether async projections are applied by workers in this server. */
bool
ProjWorkerExpected(void)
{
	return shared != NULL && proj_enabled;
}

/*
 * The slot of a database, or NULL if it has none (no worker has been
 * started for it, or the library is not preloaded).  Slots are assigned by
 * the launcher only; a stale answer costs at most a spurious wakeup.
 */
static ProjDbSlot *
FindSlot(Oid dboid)
{
	int			i;

	if (shared == NULL || !OidIsValid(dboid))
		return NULL;
	if (dboid == MyDatabaseId && db_slot >= 0 &&
		shared->slots[db_slot].dboid == dboid)
		return &shared->slots[db_slot];
	for (i = 0; i < shared->nslots; i++)
	{
		if (shared->slots[i].dboid == dboid)
		{
			if (dboid == MyDatabaseId)
				db_slot = i;
			return &shared->slots[i];
		}
	}
	return NULL;
}

/* ---- the launcher ---- */

static void
LauncherDetach(int code, Datum arg)
{
	shared->launcher_latch = NULL;
	shared->launcher_pid = 0;
}

void
ProjLauncherAttach(void)
{
	shared->launcher_pid = MyProcPid;
	shared->launcher_latch = MyLatch;
	before_shmem_exit(LauncherDetach, (Datum) 0);
}

/* Whether any worker runs in a slot. */
static bool
SlotHasWorkers(ProjDbSlot *slot)
{
	int			i;

	for (i = 0; i < PROJ_MAX_WORKERS_PER_DB; i++)
		if (slot->workers[i].pid != 0)
			return true;
	return false;
}

/*
 * The slot of a database: the one it has already (a launcher that started
 * again finds its workers there), or a free one, or -1.
 */
int
ProjSlotAllocate(Oid dboid)
{
	int			i;

	i = ProjSlotOf(dboid);
	if (i >= 0)
		return i;
	for (i = 0; i < shared->nslots; i++)
	{
		ProjDbSlot *slot = &shared->slots[i];

		if (!OidIsValid(slot->dboid) && !SlotHasWorkers(slot))
		{
			memset(slot->crashes, 0, sizeof(slot->crashes));
			slot->state = PROJ_WORKER_NONE;
			/* (a command that suspended the workers ends with a resume) */
			slot->dboid = dboid;
			return i;
		}
	}
	return -1;
}

/*
 * Free a slot, once no worker runs there any more (a helper may outlive its
 * leader for a while).  Returns whether it was freed.
 */
bool
ProjSlotRelease(int slot)
{
	if (SlotHasWorkers(&shared->slots[slot]))
		return false;
	shared->slots[slot].dboid = InvalidOid;
	return true;
}

/* The slot a database has, or -1. */
int
ProjSlotOf(Oid dboid)
{
	int			i;

	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == dboid)
			return i;
	return -1;
}

/* The pid of a slot's leading worker, 0 if it does not run. */
int
ProjSlotLeaderPid(int slot)
{
	return shared->slots[slot].workers[0].pid;
}

ProjWorkerState
ProjSlotState(int slot)
{
	return (ProjWorkerState) shared->slots[slot].state;
}

void
ProjSlotSetState(int slot, ProjWorkerState state)
{
	shared->slots[slot].state = state;
}

bool
ProjSlotSuspended(int slot)
{
	return pg_atomic_read_u32(&shared->slots[slot].suspend) > 0;
}

/* Whether someone asked the launcher to look at the databases again. */
bool
ProjTakeRescan(void)
{
	return pg_atomic_exchange_u32(&shared->rescan, 0) != 0;
}

/* The databases that created the extension since the last call. */
int
ProjTakeRequests(Oid *requests, int max, bool *all)
{
	int			n;

	SpinLockAcquire(&shared->mutex);
	n = Min(shared->nrequests, max);
	*all = shared->request_all || shared->nrequests > max;
	memcpy(requests, shared->requests, sizeof(Oid) * n);
	shared->nrequests = 0;
	shared->request_all = false;
	SpinLockRelease(&shared->mutex);
	return n;
}

/* ---- a worker ---- */

static void NoteCrash(ProjDbSlot *slot, const char *name, bool build);

static void
WorkerDetach(int code, Datum arg)
{
	if (my_slot != NULL)
	{
		ProjWorkerEntry *me = &my_slot->workers[my_index];
		Latch	   *launcher = shared->launcher_latch;

		me->build_xid = InvalidTransactionId;
		SpinLockAcquire(&my_slot->mutex);
		if (code != 0 && !worker_terminating && me->applying[0] != '\0')
			NoteCrash(my_slot, me->applying, me->build);
		me->applying[0] = '\0';
		SpinLockRelease(&my_slot->mutex);
		me->latch = NULL;
		me->pid = 0;
		ConditionVariableBroadcast(&my_slot->exited);
		/* (a launcher that started again watches its leader by pid) */
		if (my_index == 0 && launcher != NULL)
			SetLatch(launcher);
	}
}

/*
 * Count an exit while applying a unit (the slot's mutex held).  When the
 * table is full, the oldest-looking entry (the smallest count) gives way.
 */
static void
NoteCrash(ProjDbSlot *slot, const char *name, bool build)
{
	ProjCrash  *entry = NULL;
	int			i;

	for (i = 0; i < PROJ_MAX_CRASHES && entry == NULL; i++)
		if (slot->crashes[i].name[0] != '\0' && slot->crashes[i].build == build &&
			strcmp(slot->crashes[i].name, name) == 0)
			entry = &slot->crashes[i];
	for (i = 0; i < PROJ_MAX_CRASHES && entry == NULL; i++)
		if (slot->crashes[i].name[0] == '\0')
			entry = &slot->crashes[i];
	if (entry == NULL)
	{
		entry = &slot->crashes[0];
		for (i = 1; i < PROJ_MAX_CRASHES; i++)
			if (slot->crashes[i].count < entry->count)
				entry = &slot->crashes[i];
		entry->name[0] = '\0';
	}
	if (entry->name[0] == '\0')
	{
		strlcpy(entry->name, name, NAMEDATALEN);
		entry->build = build;
		entry->count = 0;
	}
	entry->count++;
	pg_atomic_fetch_add_u32(&slot->exits, 1);
}

/*
 * How many times in a row this database's workers exited while applying a
 * unit; with forget, the count starts over.
 */
int
ProjWorkerCrashes(const char *name, bool build, bool forget)
{
	int			count = 0;
	int			i;

	SpinLockAcquire(&my_slot->mutex);
	for (i = 0; i < PROJ_MAX_CRASHES; i++)
	{
		ProjCrash  *entry = &my_slot->crashes[i];

		if (entry->name[0] != '\0' && entry->build == build &&
			strcmp(entry->name, name) == 0)
		{
			count = entry->count;
			if (forget)
				entry->name[0] = '\0';
			break;
		}
	}
	SpinLockRelease(&my_slot->mutex);
	return count;
}

/*
 * Where this worker's rounds start, among n units: each worker at another
 * unit, and one unit further on after each exit while applying (a unit
 * that ends the process must not always come first).  Otherwise the order
 * stays: a long unit never comes twice in a row before another.
 */
int
ProjWorkerRoundStart(int n)
{
	if (n <= 0)
		return 0;
	return (int) ((pg_atomic_read_u32(&my_slot->exits) + (uint32) my_index) % (uint32) n);
}

/* SIGTERM of a worker: exit, and not as a crash. */
void
ProjWorkerSigterm(SIGNAL_ARGS)
{
	worker_terminating = true;
	die(postgres_signal_arg);
}

/*
 * Fill in this worker's entry; it is cleared again when the process exits.
 * Returns false (nothing filled in) when the slot is no longer its
 * database's, or another process has the entry.
 */
bool
ProjWorkerAttach(int slot, int index, Oid dboid)
{
	ProjWorkerEntry *me;

	if (shared->slots[slot].dboid != dboid ||
		shared->slots[slot].workers[index].pid != 0)
		return false;
	my_slot = &shared->slots[slot];
	my_index = index;
	me = &my_slot->workers[index];
	me->applying[0] = '\0';
	me->build_xid = InvalidTransactionId;
	me->latch = MyLatch;
	me->pid = MyProcPid;
	before_shmem_exit(WorkerDetach, (Datum) 0);
	return true;
}

/* The database's state for the status view (the leading worker sets it). */
void
ProjWorkerSetState(ProjWorkerState state)
{
	if (my_index == 0)
		my_slot->state = state;
}

uint32
ProjWorkerCatalogVersion(void)
{
	return pg_atomic_read_u32(&my_slot->catalog_version);
}

bool
ProjWorkerSuspended(void)
{
	return pg_atomic_read_u32(&my_slot->suspend) > 0;
}

int
ProjWorkerSlot(void)
{
	return (int) (my_slot - shared->slots);
}

/*
 * This worker's transaction is about to replay the history (a rebuild,
 * plain or online): publish its xid, so that the safe key of every other
 * transaction leaves it out, and a live projection is not held back until
 * a long batch of the rebuild commits.  That is right only because the
 * transaction appends no event: not before (then nothing is published),
 * nor after (ProjAppendsRefused, until it ends).
 */
void
ProjWorkerPublishBuild(void)
{
	if (my_slot == NULL || xact_build_published || xact_appended)
		return;
	my_slot->workers[my_index].build_xid = GetTopTransactionId();
	pg_write_barrier();
	xact_build_published = true;
}

/* Whether this transaction may append no more events (see above). */
bool
ProjAppendsRefused(void)
{
	return xact_build_published;
}

/*
 * The transactions of the workers (of every database: a transaction
 * appends only in its own) that replay the history and append no event,
 * in a palloc'd array (NULL when there are none); *n says how many.
 */
TransactionId *
ProjReplayXids(int *n)
{
	TransactionId *out = NULL;
	int			i;
	int			j;

	*n = 0;
	if (shared == NULL)
		return NULL;
	pg_read_barrier();
	for (i = 0; i < shared->nslots; i++)
	{
		for (j = 0; j < PROJ_MAX_WORKERS_PER_DB; j++)
		{
			TransactionId xid = shared->slots[i].workers[j].build_xid;

			if (!TransactionIdIsValid(xid))
				continue;
			if (out == NULL)
				out = palloc(sizeof(TransactionId) * shared->nslots * PROJ_MAX_WORKERS_PER_DB);
			out[(*n)++] = xid;
		}
	}
	return out;
}

/* Say what this worker applies now (NULL: nothing). */
void
ProjWorkerSetApplying(const char *name, bool build)
{
	ProjWorkerEntry *me = &my_slot->workers[my_index];

	SpinLockAcquire(&my_slot->mutex);
	strlcpy(me->applying, name ? name : "", NAMEDATALEN);
	me->build = build;
	SpinLockRelease(&my_slot->mutex);
}

/*
 * Whether another worker of this database is applying that model now (a
 * hint to skip it: the applier lock decides).
 */
bool
ProjWorkerOtherApplying(const char *name, bool build)
{
	bool		busy = false;
	int			i;

	SpinLockAcquire(&my_slot->mutex);
	for (i = 0; i < PROJ_MAX_WORKERS_PER_DB && !busy; i++)
		busy = i != my_index && my_slot->workers[i].pid != 0 &&
			my_slot->workers[i].build == build &&
			strcmp(my_slot->workers[i].applying, name) == 0;
	SpinLockRelease(&my_slot->mutex);
	return busy;
}

/* Whether another worker of this database is applying anything now. */
bool
ProjWorkerOthersBusy(void)
{
	bool		busy = false;
	int			i;

	SpinLockAcquire(&my_slot->mutex);
	for (i = 0; i < PROJ_MAX_WORKERS_PER_DB && !busy; i++)
		busy = i != my_index && my_slot->workers[i].pid != 0 &&
			my_slot->workers[i].applying[0] != '\0';
	SpinLockRelease(&my_slot->mutex);
	return busy;
}

/* Whether the worker at index of this worker's database runs. */
bool
ProjWorkerRunning(int index)
{
	return my_slot->workers[index].pid != 0;
}

/* ---- any backend ---- */

/*
 * The state of a database's workers: the leading worker's pid, and how many
 * processes apply its projections.
 */
ProjWorkerState
ProjDatabaseWorkerState(Oid dboid, int *pid, int *count)
{
	ProjDbSlot *slot = FindSlot(dboid);
	int			i;

	*pid = 0;
	*count = 0;
	if (slot == NULL)
		return PROJ_WORKER_NONE;
	*pid = slot->workers[0].pid;
	for (i = 0; i < PROJ_MAX_WORKERS_PER_DB; i++)
		if (slot->workers[i].pid != 0)
			(*count)++;
	return (ProjWorkerState) slot->state;
}

/* Wake this database's workers, if they run. */
void
ProjWakeWorkers(void)
{
	ProjDbSlot *slot = FindSlot(MyDatabaseId);
	int			i;

	if (slot == NULL)
		return;
	for (i = 0; i < PROJ_MAX_WORKERS_PER_DB; i++)
	{
		Latch	   *latch = slot->workers[i].latch;

		if (latch != NULL)
			SetLatch(latch);
	}
}

/*
 * Ask the launcher to look at the databases again now, and (with
 * this_database) to look for the extension in the current one.
 */
void
ProjWakeLauncher(bool this_database)
{
	Latch	   *latch;

	if (shared == NULL)
		return;
	if (this_database && OidIsValid(MyDatabaseId))
	{
		SpinLockAcquire(&shared->mutex);
		if (shared->nrequests < PROJ_MAX_REQUESTS)
			shared->requests[shared->nrequests++] = MyDatabaseId;
		else
			shared->request_all = true;
		SpinLockRelease(&shared->mutex);
	}
	pg_atomic_write_u32(&shared->rescan, 1);
	latch = shared->launcher_latch;
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Sleep until a checkpoint of this database may have moved, or timeout_ms
 * passed.  Returns false at once, with *available unset, when there is no
 * condition variable to sleep on (no preload, no worker ever started here):
 * the caller polls then.  The first call prepares to sleep; the caller ends
 * with ProjCancelProgressWait.
 */
bool
ProjWaitForProgress(long timeout_ms, bool *available)
{
	ProjDbSlot *slot = FindSlot(MyDatabaseId);

	*available = slot != NULL;
	if (slot == NULL)
		return false;
	return !ConditionVariableTimedSleep(&slot->progress, timeout_ms,
										PG_WAIT_EXTENSION);
}

void
ProjCancelProgressWait(void)
{
	ConditionVariableCancelSleep();
}

/*
 * Ask a database's workers to exit, for a command that needs the database
 * to itself: raise its suspend count (the launcher starts none while it is
 * raised) and signal each worker once.  Returns whether the count was
 * raised: then the caller must call ProjResumeWorkers on every path.
 */
bool
ProjSuspendWorkers(Oid dboid)
{
	ProjDbSlot *slot = FindSlot(dboid);
	int			i;

	if (slot == NULL)
		return false;
	pg_atomic_fetch_add_u32(&slot->suspend, 1);
	for (i = 0; i < PROJ_MAX_WORKERS_PER_DB; i++)
	{
		pid_t		pid = slot->workers[i].pid;

		if (pid != 0)
			(void) kill(pid, SIGTERM);
	}
	return true;
}

/* Wait (bounded, interruptibly) until a database's workers have exited. */
void
ProjWaitForWorkersGone(Oid dboid)
{
	ProjDbSlot *slot = FindSlot(dboid);
	TimestampTz start = GetCurrentTimestamp();

	if (slot == NULL)
		return;
	for (;;)
	{
		bool		any = false;
		long		secs;
		int			usecs;
		long		left;
		int			i;

		for (i = 0; i < PROJ_MAX_WORKERS_PER_DB && !any; i++)
			any = slot->workers[i].pid != 0;
		if (!any || slot->dboid != dboid)
			break;
		TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
		left = SUSPEND_WAIT_MS - (secs * 1000 + usecs / 1000);
		if (left <= 0)
			break;
		(void) ConditionVariableTimedSleep(&slot->exited, Min(left, 100),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/* The command is done (or failed): the launcher may start them again. */
void
ProjResumeWorkers(Oid dboid)
{
	ProjDbSlot *slot = FindSlot(dboid);
	uint32		count;

	if (slot == NULL)
		return;
	/* (never below zero: the slot may have been freed and taken again) */
	count = pg_atomic_read_u32(&slot->suspend);
	while (count > 0 &&
		   !pg_atomic_compare_exchange_u32(&slot->suspend, &count, count - 1))
		;
	ProjWakeLauncher(false);
}

/* ---- what the current transaction did ---- */

/* The current transaction appended events: wake the workers at commit. */
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

/* The current transaction changed a projection: the workers look again. */
void
ProjNoteCatalogChange(void)
{
	xact_catalog_changed = true;
}

/* The current transaction created or updated the extension. */
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

static void
ForgetNotes(void)
{
	xact_appended = xact_progressed = xact_poke_launcher = xact_rescan =
		xact_catalog_changed = false;
}

/* Act on what a committed transaction did. */
static void
ActOnNotes(void)
{
	if (shared != NULL)
	{
		ProjDbSlot *slot = FindSlot(MyDatabaseId);

		if (slot != NULL)
		{
			if (xact_catalog_changed)
				pg_atomic_fetch_add_u32(&slot->catalog_version, 1);
			if (xact_progressed)
				ConditionVariableBroadcast(&slot->progress);
		}
		if (xact_appended || xact_catalog_changed)
			ProjWakeWorkers();
		if (xact_poke_launcher || xact_rescan)
			ProjWakeLauncher(xact_poke_launcher);
	}
	ForgetNotes();
}

/*
 * COMMIT PREPARED committed a transaction prepared by some session, which
 * could not act on what it did: assume it did everything.
 */
void
ProjNotePreparedCommit(void)
{
	xact_appended = xact_progressed = xact_catalog_changed = true;
	ActOnNotes();
}

/*
 * Transaction callback: after commit, wake whoever needs to know.  A
 * prepared transaction's notes are acted on by COMMIT PREPARED (utility.c).
 */
static void
ShmemXactCallback(XactEvent event, void *arg)
{
	if (xact_build_published &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		 event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		 event == XACT_EVENT_PREPARE))
	{
		my_slot->workers[my_index].build_xid = InvalidTransactionId;
		xact_build_published = false;
	}
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			ActOnNotes();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ForgetNotes();
			break;
		default:
			break;
	}
}

void
ProjShmemXactInit(void)
{
	RegisterXactCallback(ShmemXactCallback, NULL);
}

const char *
ProjWorkerStateName(ProjWorkerState state)
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
		case PROJ_WORKER_NEEDS_UPDATE:
			return "waiting for ALTER EXTENSION UPDATE";
		default:
			return "not started";
	}
}
