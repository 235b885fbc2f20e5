/*-------------------------------------------------------------------------
 *
 * projections.h
 *	  Declarations shared by the files of the projections extension.
 *
 * The extension keeps CQRS read models up to date inside the database:
 * events are appended to projections.events, and projections (a handler
 * function plus an event-type filter) are applied to them either by a
 * background worker (async) or inside the appending transaction (inline).
 *
 * Files by role:
 *	projections.c	module init, GUCs, hooks
 *	shmem.c			shared state, commit-time wakeups
 *	launcher.c		the cluster-wide launcher
 *	worker.c		the per-database worker
 *	catalog.c		extension objects, catalog rows, ordering keys
 *	apply.c			the batch apply engine and handler calls
 *	events.c		the event store: append, triggers on events
 *	inline.c		inline projections
 *	api.c			SQL-callable projection functions
 *	utility.c		the ProcessUtility hook (database-level commands)
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_H
#define PROJECTIONS_H

#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/snapshot.h"

#define PROJ_EXTENSION_NAME		"projections"
#define PROJ_SCHEMA_NAME		"projections"
#define PROJ_MAX_NAME_LEN		(NAMEDATALEN - 1)
#define PROJ_NOTIFY_CHANNEL		"projections"

/* advisory lock class (locktag_field4) of a projection being applied */
#define PROJ_LOCK_PROJECTION	0x5050

/* ---- GUCs (projections.c) ---- */
extern bool proj_enabled;
extern int	proj_batch_size;
extern int	proj_poll_interval_ms;
extern int	proj_max_databases;
extern int	proj_stall_warning_ms;
extern int	proj_inline_switch_timeout_ms;

/* ---- shared state (shmem.c) ---- */

typedef enum ProjWorkerState
{
	PROJ_WORKER_NONE = 0,		/* no worker wanted or known */
	PROJ_WORKER_STARTING,		/* registered, not yet connected */
	PROJ_WORKER_RUNNING,		/* connected and applying */
	PROJ_WORKER_NO_SLOT,		/* no free background worker slot */
	PROJ_WORKER_NO_EXTENSION,	/* the database has no projections extension */
	PROJ_WORKER_DISABLED,		/* projections.enabled is off */
	PROJ_WORKER_SUSPENDED		/* stopped for a database-level command */
} ProjWorkerState;

typedef struct ProjDbSlot
{
	Oid			dboid;			/* InvalidOid when the slot is free */
	pid_t		pid;			/* worker's pid, 0 when not running */
	Latch	   *latch;			/* worker's latch while it runs */
	int			state;			/* a ProjWorkerState */
	pg_atomic_uint32 suspend;	/* > 0: a database-level command needs it gone */
	pg_atomic_uint32 catalog_version;	/* bumped by each change to the catalog */
	ConditionVariable progress; /* broadcast after each committed batch */
} ProjDbSlot;

#define PROJ_MAX_REQUESTS 16

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

extern ProjShared *ProjSharedState;

extern Size ProjSharedShmemSize(void);
extern void ProjSharedShmemInit(void);
extern ProjDbSlot *ProjSlotForDatabase(Oid dboid);
extern void ProjWakeLauncher(bool this_database);
extern void ProjWakeWorker(void);
extern void ProjNoteAppend(void);
extern void ProjNoteProgress(void);
extern void ProjNoteCatalogChange(void);
extern void ProjNoteLauncherPoke(void);
extern void ProjNoteDatabaseCreated(void);
extern void ProjXactCallback(XactEvent event, void *arg);
extern bool ProjWorkerExpected(void);

/* ---- launcher and worker ---- */
extern void ProjRegisterLauncher(void);
extern PGDLLEXPORT void projections_launcher_main(Datum main_arg);
extern PGDLLEXPORT void projections_worker_main(Datum main_arg);
extern const char *ProjWorkerStateName(int state);

/* ---- catalog.c ---- */

typedef struct ProjExtInfo
{
	Oid			extension_oid;
	Oid			schema_oid;
	Oid			owner;			/* the extension's owner */
	Oid			events_relid;
	Oid			events_type;	/* row type of projections.events */
	Oid			catalog_relid;	/* projections.projection */
	Oid			offset_relid;	/* projections.key_offset */
	Oid			sequence_relid; /* projections.events_global_position_seq */
	Oid			streams_relid;	/* projections.streams */
} ProjExtInfo;

typedef struct ProjSavedUser
{
	Oid			userid;
	int			sec_context;
} ProjSavedUser;

/* one row of projections.projection, as the apply engine needs it */
typedef struct ProjectionDef
{
	char	   *name;
	char	   *handler;		/* schema-qualified signature */
	char	   *reset;			/* likewise, or NULL */
	Datum		event_types;	/* text[], valid when has_filter */
	bool		has_filter;
	bool		is_inline;		/* mode = 'inline' */
	bool		skip_on_error;	/* on_error = 'skip' */
	Oid			owner;
	char	   *search_path;
	char		state;			/* 'a'ctive, 'p'aused, 'f'ailed */
	bool		rebuilding;
	bool		inline_active;
	int64		checkpoint_key;
	int64		checkpoint_position;
	int64		skip_position;
	int64		position;
} ProjectionDef;

typedef enum ProjPlanId
{
	PLAN_LOAD_PROJECTION,
	PLAN_SAVE_PROGRESS,
	PLAN_FETCH_EVENTS,
	PLAN_PROBE_EVENTS,
	PLAN_RECORD_FAILURE,
	PLAN_RECORD_SKIPPED,
	PLAN_LIST_ASYNC,
	PLAN_LIST_INLINE,
	PLAN_ADVANCE_STREAM,
	PLAN_RESTORE_STREAM,
	PLAN_INSERT_EVENT,
	PLAN_READ_OFFSET,
	PLAN_MAX_KEY,
	PLAN_SET_OFFSET,
	PLAN_MAX_POSITION,
	PLAN_LAST_SAFE_EVENT,
	PLAN_WAIT_TARGET,
	PLAN_READ_CHECKPOINT,
	PLAN_HEAD,
	PLAN_MAX_EVENT_KEY,
	PLAN_COUNT
} ProjPlanId;

extern const ProjExtInfo *ProjExtGet(bool missing_ok);
extern void ProjInvalidateCaches(Datum arg, Oid relid);
extern int	ProjExecute(ProjPlanId id, Datum *values, const char *nulls,
						bool latest, long count);
extern bool ProjLockExtension(void);
extern bool ProjLockProjection(const char *name, bool wait);
extern bool ProjLoad(const char *name, ProjectionDef *def);
extern ProjectionDef *ProjLoadOrError(const char *name);
extern void ProjCheckOwner(const ProjectionDef *def);
extern int	ProjExecuteSql(const char *sql, int nargs, Oid *types,
						   Datum *values, const char *nulls);
extern Oid	ProjResolveFunction(const char *signature);
extern void ProjInvalidateFunctions(void);
extern int64 ProjKeyOffset(void);
extern int64 ProjSafeKey(Snapshot snapshot);
extern int64 ProjNewKeyBase(void);

/* ---- apply.c ---- */

typedef struct ProjCall
{
	FmgrInfo	flinfo;
	Oid			owner;
	const char *search_path;
	const char *projection;
	ProjSavedUser saved;
	int			guc_level;
} ProjCall;

typedef enum ProjApplyCaller
{
	PROJ_CALLER_WORKER,			/* one batch, never waits for locks */
	PROJ_CALLER_RUN				/* projections.run(): waits, applies up to a limit */
} ProjApplyCaller;

extern void ProjCallPrepare(ProjCall *call, Oid func, Oid owner,
							const char *search_path, const char *projection,
							MemoryContext cxt);
extern void ProjCallEnter(ProjCall *call);
extern void ProjCallLeave(ProjCall *call);
extern void ProjCallEvent(ProjCall *call, Datum event);
extern int64 ProjApply(const char *name, ProjApplyCaller caller,
					   int64 max_events, bool *more, bool *blocked);
extern void ProjDeactivateInline(ProjectionDef *def);

/* ---- events.c ---- */
extern bool proj_trusted_row;
extern bool proj_maintenance;

/* ---- inline.c ---- */
extern void ProjInlineInvalidate(void);

/* ---- utility.c ---- */
extern void ProjInstallUtilityHook(void);

#endif							/* PROJECTIONS_H */
