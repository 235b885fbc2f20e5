/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared state between backends, the launcher and the workers, reached
 *	  only through these functions; and the commit-time wakeups.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_SHMEM_H
#define PROJECTIONS_SHMEM_H

#include "access/xact.h"

/* what a database's workers are doing, for the status view */
typedef enum ProjWorkerState
{
	PROJ_WORKER_NONE = 0,		/* no worker wanted or known */
	PROJ_WORKER_STARTING,		/* registered, not yet connected */
	PROJ_WORKER_RUNNING,		/* connected and applying */
	PROJ_WORKER_NO_SLOT,		/* no free background worker slot */
	PROJ_WORKER_NO_EXTENSION,	/* the database has no projections extension */
	PROJ_WORKER_DISABLED,		/* projections.enabled is off */
	PROJ_WORKER_SUSPENDED,		/* stopped for a database-level command */
	PROJ_WORKER_NEEDS_UPDATE	/* the extension waits for ALTER EXTENSION UPDATE */
} ProjWorkerState;

extern const char *ProjWorkerStateName(ProjWorkerState state);

/* set up */
extern Size ProjShmemSize(void);
extern void ProjShmemInit(void);
extern bool ProjShmemAttached(void);
extern bool ProjWorkerExpected(void);

/* the launcher */
extern void ProjLauncherAttach(void);
extern int	ProjSlotAllocate(Oid dboid);
extern bool ProjSlotRelease(int slot);
extern int	ProjSlotOf(Oid dboid);
extern int	ProjSlotLeaderPid(int slot);
extern ProjWorkerState ProjSlotState(int slot);
extern void ProjSlotSetState(int slot, ProjWorkerState state);
extern bool ProjSlotSuspended(int slot);
extern bool ProjTakeRescan(void);
extern int	ProjTakeRequests(Oid *requests, int max, bool *all);

/* a worker (index 0 leads its database, the others help) */
extern bool ProjWorkerAttach(int slot, int index, Oid dboid);
extern int	ProjWorkerCrashes(const char *name, bool build, bool forget);
extern int	ProjWorkerRoundStart(int n);
extern void ProjWorkerPublishBuild(void);
extern bool ProjAppendsRefused(void);
extern TransactionId *ProjReplayXids(int *n);
extern void ProjWorkerSigterm(SIGNAL_ARGS);
extern void ProjWorkerSetState(ProjWorkerState state);
extern uint32 ProjWorkerCatalogVersion(void);
extern bool ProjWorkerSuspended(void);
extern void ProjWorkerSetApplying(const char *name, bool build);
extern bool ProjWorkerOtherApplying(const char *name, bool build);
extern bool ProjWorkerRunning(int index);
extern bool ProjWorkerOthersBusy(void);
extern int	ProjWorkerSlot(void);

/* any backend */
extern ProjWorkerState ProjDatabaseWorkerState(Oid dboid, int *pid, int *count);
extern void ProjWakeWorkers(void);
extern void ProjWakeLauncher(bool this_database);
extern bool ProjWaitForProgress(long timeout_ms, bool *available);
extern void ProjCancelProgressWait(void);
extern bool ProjSuspendWorkers(Oid dboid);
extern void ProjWaitForWorkersGone(Oid dboid);
extern void ProjResumeWorkers(Oid dboid);

/* what the current transaction did, acted upon at commit */
extern void ProjNoteAppend(void);
extern void ProjNoteProgress(void);
extern void ProjNoteCatalogChange(void);
extern void ProjNoteLauncherPoke(void);
extern void ProjNoteDatabaseCreated(void);
extern void ProjNotePreparedCommit(void);
extern void ProjShmemXactInit(void);

#endif							/* PROJECTIONS_SHMEM_H */
