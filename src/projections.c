/*-------------------------------------------------------------------------
 *
 * projections.c
 *	  Module initialization: GUCs, shared memory, the launcher, hooks.
 *
 * Loaded with shared_preload_libraries, the module registers the launcher
 * and the ProcessUtility hook and reserves shared memory.  Loaded on first
 * use instead, it still provides the event store, run() and inline
 * projections; the functions that need the worker say so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "compat.h"
#include "projections.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

bool		proj_enabled = true;
int			proj_batch_size = 1000;
int			proj_poll_interval_ms = 1000;
int			proj_max_databases = 8;
int			proj_stall_warning_ms = 60000;
int			proj_inline_switch_timeout_ms = 1000;

#ifdef PROJ_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
ProjShmemRequest(void)
{
#ifdef PROJ_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(ProjSharedShmemSize());
}

static void
ProjShmemStartup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	ProjSharedShmemInit();
}

/* A function or schema changed: handlers are looked up again. */
static void
ProjInvalidateProcs(Datum arg, int cacheid, uint32 hashvalue)
{
	ProjInvalidateFunctions();
	ProjInlineInvalidate();
}

static void
DefineGucs(void)
{
	DefineCustomBoolVariable("projections.enabled",
							 "Runs the background workers that apply async projections.",
							 "When off, workers exit and none is started; run() and inline projections still work.",
							 &proj_enabled, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("projections.batch_size",
							"Events applied per batch (and per transaction of the worker).",
							NULL,
							&proj_batch_size, 1000, 1, 1000000, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("projections.poll_interval",
							"How often an idle worker looks for events it was not woken for.",
							"Appending transactions wake the worker when they commit; this is the fallback.",
							&proj_poll_interval_ms, 1000, 10, 3600000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	/* a server-start setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("projections.max_databases",
								"Databases that can have a projections worker at the same time.",
								"Each worker also takes one of max_worker_processes.",
								&proj_max_databases, 8, 1, 1024, PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	DefineCustomIntVariable("projections.stall_warning",
							"Logs a warning when an open transaction has held projections back this long.",
							"0 turns the warning off.",
							&proj_stall_warning_ms, 60000, 0, INT_MAX, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("projections.inline_switch_timeout",
							"How long the worker waits for appends to pause when it switches a projection to inline.",
							NULL,
							&proj_inline_switch_timeout_ms, 1000, 1, 600000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("projections.maintenance",
							 "Lets the owner of projections.events update, delete or truncate events.",
							 "For documented maintenance only: events are otherwise immutable.",
							 &proj_maintenance, false, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("projections");
}

void
_PG_init(void)
{
	DefineGucs();

	RegisterXactCallback(ProjXactCallback, NULL);
	CacheRegisterRelcacheCallback(ProjInvalidateCaches, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, ProjInvalidateProcs, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, ProjInvalidateProcs, (Datum) 0);

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

#ifdef PROJ_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ProjShmemRequest;
#else
	ProjShmemRequest();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ProjShmemStartup;

	ProjRegisterLauncher();
	ProjInstallUtilityHook();
}
