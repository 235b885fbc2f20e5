/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  The ProcessUtility hook: database-level commands and the worker.
 *
 * DROP DATABASE, ALTER DATABASE ... RENAME TO / SET TABLESPACE, and CREATE
 * DATABASE ... TEMPLATE all refuse to run while another session is connected
 * to the database, and our worker is such a session.  Before such a command
 * the hook asks the database's worker to exit and waits for it; after the
 * command the launcher may start it again (it will not find a dropped
 * database).  CREATE EXTENSION projections and CREATE DATABASE wake the
 * launcher when they commit, and COMMIT PREPARED wakes the worker, whose
 * events just became visible.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "projections.h"

#define SUSPEND_WAIT_MS 10000

static ProcessUtility_hook_type prev_utility_hook = NULL;

static bool
HasOption(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, name) == 0)
			return true;
	}
	return false;
}

static char *
OptionString(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, name) == 0 && opt->arg != NULL)
			return defGetString(opt);
	}
	return NULL;
}

/*
 * The database a command needs free of other sessions, if any.
 */
static Oid
DatabaseToFree(Node *parsetree)
{
	const char *dbname = NULL;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			dbname = ((DropdbStmt *) parsetree)->dbname;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				dbname = ((RenameStmt *) parsetree)->subname;
			break;
		case T_AlterDatabaseStmt:
			if (HasOption(((AlterDatabaseStmt *) parsetree)->options, "tablespace"))
				dbname = ((AlterDatabaseStmt *) parsetree)->dbname;
			break;
		case T_CreatedbStmt:
			dbname = OptionString(((CreatedbStmt *) parsetree)->options, "template");
			break;
		default:
			break;
	}
	return dbname ? get_database_oid(dbname, true) : InvalidOid;
}

/*
 * Ask the database's worker to exit, and wait (bounded) until it has.
 * Returns the slot, whose suspend count the caller must drop again.
 */
static ProjDbSlot *
SuspendWorker(Oid dboid)
{
	ProjDbSlot *slot = ProjSlotForDatabase(dboid);
	TimestampTz start = GetCurrentTimestamp();

	if (slot == NULL)
		return NULL;
	pg_atomic_fetch_add_u32(&slot->suspend, 1);
	for (;;)
	{
		pid_t		pid = slot->pid;

		if (pid == 0 || slot->dboid != dboid)
			break;
		(void) kill(pid, SIGTERM);
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), SUSPEND_WAIT_MS))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return slot;
}

static void
ResumeWorker(ProjDbSlot *slot)
{
	pg_atomic_fetch_sub_u32(&slot->suspend, 1);
	ProjWakeLauncher(false);
}

static void
ProjProcessUtility(PROJ_UTILITY_ARGS)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			dboid = DatabaseToFree(parsetree);
	ProjDbSlot *suspended = NULL;

	if (OidIsValid(dboid) && dboid != MyDatabaseId)
		suspended = SuspendWorker(dboid);

	PG_TRY();
	{
		if (prev_utility_hook)
			prev_utility_hook(PROJ_UTILITY_PASS);
		else
			standard_ProcessUtility(PROJ_UTILITY_PASS);
	}
	PG_FINALLY();
	{
		if (suspended != NULL)
			ResumeWorker(suspended);
	}
	PG_END_TRY();

	switch (nodeTag(parsetree))
	{
		case T_CreateExtensionStmt:
			if (strcmp(((CreateExtensionStmt *) parsetree)->extname,
					   PROJ_EXTENSION_NAME) == 0)
				ProjNoteLauncherPoke();
			break;
		case T_CreatedbStmt:
			ProjNoteDatabaseCreated();
			break;
		case T_TransactionStmt:
			if (((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
				ProjWakeWorker();
			break;
		default:
			break;
	}
}

void
ProjInstallUtilityHook(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = ProjProcessUtility;
}
