/*-------------------------------------------------------------------------
 *
 * projections.c
 *	  Module initialization: the settings, each module's caches and
 *	  callbacks, shared memory, the launcher, the utility hook.
 *
 * Loaded with shared_preload_libraries, the module reserves shared memory
 * and registers the launcher.  Loaded on first use instead, it still
 * provides the event store, run() and inline projections; the functions
 * that need the worker say so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "compat.h"
#include "events.h"
#include "handler.h"
#include "inline.h"
#include "keys.h"
#include "launcher.h"
#include "registry.h"
#include "settings.h"
#include "shmem.h"
#include "utility.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

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
	RequestAddinShmemSpace(ProjShmemSize());
}

static void
ProjShmemStartup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	ProjShmemInit();
}

void
_PG_init(void)
{
	ProjDefineSettings();

	ProjRegistryInit();
	ProjKeysInit();
	ProjHandlerInit();
	ProjInlineInit();
	ProjEventsInit();
	ProjShmemXactInit();
	if (IsBinaryUpgrade)
		return;
	ProjInstallUtilityHook();

	if (!process_shared_preload_libraries_in_progress)
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
}
