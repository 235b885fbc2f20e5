/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The projections.* settings (GUCs), and the back-off every retry loop
 *	  of the extension uses.  Every layer reads these; this file calls
 *	  nothing of the extension.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "compat.h"
#include "settings.h"

bool		proj_enabled = true;
int			proj_batch_size = 1000;
int			proj_batch_handler_size = 5000;
int			proj_poll_interval_ms = 1000;
int			proj_max_databases = 8;
int			proj_workers_per_database = 2;
int			proj_stall_warning_ms = 60000;
int			proj_inline_switch_timeout_ms = 1000;
int			proj_handler_timeout_ms = 60000;
int			proj_max_retries = 10;
int			proj_exchange_timeout_ms = 1000;
bool		proj_maintenance = false;

#define MAX_BACKOFF_MS	60000

/*
 * Exponential back-off after the n-th consecutive failure (n >= 0): 1 s,
 * 2 s, 4 s, ... up to a minute.  The launcher and the workers use it.
 */
int
ProjBackoffMs(int failures)
{
	return Min(MAX_BACKOFF_MS, 1000 << Min(failures, 6));
}

/*
 * Define the projections.* settings (from _PG_init).
 */
void
ProjDefineSettings(void)
{
	DefineCustomBoolVariable("projections.enabled",
							 "Runs the background workers that apply async projections.",
							 "When off, workers exit and none is started; run() and inline projections still work.",
							 &proj_enabled, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("projections.batch_size",
							"Events applied per batch (and per transaction of a worker) to a projection with a per-event handler.",
							NULL,
							&proj_batch_size, 1000, 1, 1000000, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("projections.batch_handler_size",
							"Events a batch handler gets per call (and per transaction of a worker).",
							"Larger arrays spread the cost of a call over more events and write each row fewer times; past a few thousand events sorts and arrays outgrow the CPU caches, and the transaction holds the safe key of other databases longer.",
							&proj_batch_handler_size, 5000, 1, 1000000, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("projections.poll_interval",
							"How often an idle worker looks for events it was not woken for.",
							"Appending transactions wake the workers when they commit; this is the fallback.",
							&proj_poll_interval_ms, 1000, 10, 3600000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	/* a server-start setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("projections.max_databases",
								"Databases that can have projections workers at the same time.",
								"Each database's workers take some of max_worker_processes.",
								&proj_max_databases, 8, 1, 1024, PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	DefineCustomIntVariable("projections.workers_per_database",
							"Processes that may apply one database's async projections at the same time.",
							"Each projection is applied by one process at a time; more workers start only while several projections have work.",
							&proj_workers_per_database, 2, 1, PROJ_MAX_WORKERS_PER_DB,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("projections.stall_warning",
							"Logs a warning when an open transaction has held projections back this long.",
							"0 turns the warning off.",
							&proj_stall_warning_ms, 60000, 0, INT_MAX, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("projections.inline_switch_timeout",
							"How long a switch between async and inline waits for appends to pause.",
							"The worker tries again later; the SQL functions fail with SQLSTATE 55P03.",
							&proj_inline_switch_timeout_ms, 1000, 1, 600000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("projections.handler_timeout",
							"Longest time one call of a handler or reset function may take.",
							"A call that takes longer fails with SQLSTATE 57014 and the projection's on_error policy applies. 0 turns the limit off.",
							&proj_handler_timeout_ms, 60000, 0, INT_MAX, PGC_SUSET,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("projections.max_retries",
							"How often a worker retries a batch that failed for a reason other than its events.",
							"Serialization failures, deadlocks, lock timeouts, out of resources: retried with back-off, then the projection is marked failed.",
							&proj_max_retries, 10, 0, 1000, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("projections.exchange_timeout",
							"How long the exchange of an online rebuild waits for its locks before trying again later.",
							NULL,
							&proj_exchange_timeout_ms, 1000, 1, 600000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("projections.maintenance",
							 "Lets the owner of projections.events update, delete or truncate events.",
							 "For documented maintenance only: events are otherwise immutable.",
							 &proj_maintenance, false, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("projections");
}
