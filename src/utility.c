/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  The ProcessUtility hook: database-level commands and the workers, and
 *	  roles that own projections.
 *
 * DROP DATABASE, ALTER DATABASE ... RENAME TO / SET TABLESPACE, and CREATE
 * DATABASE ... TEMPLATE all refuse to run while another session is connected
 * to the database, and our workers are such sessions.  Before such a
 * command, once the caller's privileges for it have been checked, the hook
 * asks the database's workers to exit (one signal each) and waits for them
 * on a condition variable; after the command, whether it succeeded, failed
 * or was cancelled, the launcher may start them again (it will not find a
 * dropped database).  A caller who is about to be refused never stops
 * anyone's worker.
 *
 * A projection's owner is a role, which the catalog names by OID: DROP ROLE
 * of a role that owns projections in the current database is refused, DROP
 * OWNED BY unregisters its projections there, and REASSIGN OWNED BY gives
 * them to the new owner (as PostgreSQL does for the objects of the current
 * database).
 *
 * CREATE EXTENSION projections, ALTER EXTENSION projections UPDATE and
 * CREATE DATABASE wake the launcher when they commit, and COMMIT PREPARED
 * acts on what the prepared transaction did.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "settings.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "compat.h"
#include "inline.h"
#include "rebuild.h"
#include "registry.h"
#include "shmem.h"
#include "utility.h"

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

/* Whether the current user owns a database, or it is a template. */
static bool
OwnsOrTemplate(Oid dboid, bool template_ok)
{
	HeapTuple	tup;
	bool		is_template = false;

	if (ProjDatabaseOwnerCheck(dboid, GetUserId()))
		return true;
	if (!template_ok)
		return false;
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	if (HeapTupleIsValid(tup))
	{
		is_template = ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
		ReleaseSysCache(tup);
	}
	return is_template;
}

/*
 * The database a command needs free of other sessions, if the caller may
 * run that command on it (otherwise the command fails by itself, and its
 * workers are left alone).
 */
static Oid
DatabaseToFree(Node *parsetree)
{
	const char *dbname = NULL;
	Oid			dboid;
	bool		allowed = false;

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
	if (dbname == NULL)
		return InvalidOid;
	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid) || dboid == MyDatabaseId)
		return InvalidOid;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
		case T_AlterDatabaseStmt:
			allowed = OwnsOrTemplate(dboid, false);
			break;
		case T_RenameStmt:
			allowed = OwnsOrTemplate(dboid, false) && have_createdb_privilege();
			break;
		case T_CreatedbStmt:
			allowed = have_createdb_privilege() && OwnsOrTemplate(dboid, true);
			break;
		default:
			break;
	}
	return allowed ? dboid : InvalidOid;
}

/* Whether the current user may see other roles' projections (manages roles). */
static bool
ManagesRoles(void)
{
	HeapTuple	tup;
	bool		result = false;

	if (superuser())
		return true;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_authid) GETSTRUCT(tup))->rolcreaterole;
		ReleaseSysCache(tup);
	}
	return result;
}

/* The OIDs of the existing roles of a list of RoleSpecs. */
static List *
RoleOids(List *roles)
{
	List	   *oids = NIL;
	ListCell   *lc;

	foreach(lc, roles)
	{
		Oid			role = get_rolespec_oid((RoleSpec *) lfirst(lc), true);

		if (OidIsValid(role))
			oids = lappend_oid(oids, role);
	}
	return oids;
}

/*
 * Run fn on the projections each role owns in this database, inside the
 * command's transaction.  Nothing happens when the extension is not here.
 */
static void
ForProjectionsOf(List *roles, void (*fn) (Oid role, List *names, void *arg),
				 void *arg)
{
	ListCell   *lc;
	bool		pushed = false;

	if (!IsTransactionState() || ProjExtGet(true) == NULL)
		return;
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	foreach(lc, roles)
	{
		Oid			role = lfirst_oid(lc);
		List	   *names = ProjCatalogOwnedBy(role);

		if (names != NIL)
			fn(role, names, arg);
	}
	if (pushed)
		PopActiveSnapshot();
}

static void
RefuseDrop(Oid role, List *names, void *arg)
{
	StringInfoData list;
	ListCell   *lc;

	initStringInfo(&list);
	foreach(lc, names)
		appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "",
						 quote_literal_cstr((char *) lfirst(lc)));
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("role \"%s\" cannot be dropped because it owns projections",
					GetUserNameFromId(role, false)),
			 errdetail("Projections owned in database \"%s\": %s.",
					   get_database_name(MyDatabaseId), list.data),
			 errhint("Unregister them, or give them to another role with REASSIGN OWNED BY, "
					 "in each database that has them.")));
}

static void
UnregisterAll(Oid role, List *names, void *arg)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		ProjectionDef def;

		(void) ProjCatalogLock(name, PROJ_TARGET_LIVE, true);
		if (!ProjCatalogLoad(name, &def))
			continue;
		if (def.inline_active)
		{
			(void) ProjInlineLockForSwitch(name, true);
			ProjInlineChanged();
		}
		if (def.build_schema != NULL)
			ProjRebuildCancel(&def);
		ProjCatalogDelete(name);
	}
	ProjNoteCatalogChange();
}

static void
Reassign(Oid role, List *names, void *arg)
{
	Oid			new_owner = *(Oid *) arg;
	ListCell   *lc;

	foreach(lc, names)
	{
		(void) ProjCatalogLock((const char *) lfirst(lc), PROJ_TARGET_LIVE, true);
		ProjCatalogSetOwner((const char *) lfirst(lc), new_owner);
	}
	ProjNoteCatalogChange();
}

/* Whether the current user has the privileges of every role in the list. */
static bool
HasPrivsOfAll(List *roles)
{
	ListCell   *lc;

	foreach(lc, roles)
		if (!has_privs_of_role(GetUserId(), lfirst_oid(lc)))
			return false;
	return true;
}

/*
 * Before the command: roles that own projections.  (DROP OWNED only once
 * the caller is known to be allowed: PostgreSQL checks the same.)
 */
static void
BeforeRoleCommand(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_DropRoleStmt:
			if (ManagesRoles())
				ForProjectionsOf(RoleOids(((DropRoleStmt *) parsetree)->roles),
								 RefuseDrop, NULL);
			break;
		case T_DropOwnedStmt:
			{
				List	   *roles = RoleOids(((DropOwnedStmt *) parsetree)->roles);

				if (HasPrivsOfAll(roles))
					ForProjectionsOf(roles, UnregisterAll, NULL);
			}
			break;
		default:
			break;
	}
}

/* After the command (it succeeded): REASSIGN OWNED gives projections away. */
static void
AfterRoleCommand(Node *parsetree)
{
	if (IsA(parsetree, ReassignOwnedStmt))
	{
		ReassignOwnedStmt *stmt = (ReassignOwnedStmt *) parsetree;
		Oid			new_owner = get_rolespec_oid(stmt->newrole, false);

		ForProjectionsOf(RoleOids(stmt->roles), Reassign, &new_owner);
	}
}

static void
ProjProcessUtility(PROJ_UTILITY_ARGS)
{
	Node	   *parsetree = pstmt->utilityStmt;
	volatile Oid dboid = DatabaseToFree(parsetree);
	volatile bool suspended = false;

	BeforeRoleCommand(parsetree);
	PG_TRY();
	{
		if (OidIsValid(dboid))
		{
			suspended = ProjSuspendWorkers(dboid);
			ProjWaitForWorkersGone(dboid);
		}
		if (prev_utility_hook)
			prev_utility_hook(PROJ_UTILITY_PASS);
		else
			standard_ProcessUtility(PROJ_UTILITY_PASS);
	}
	PG_FINALLY();
	{
		if (suspended)
			ProjResumeWorkers(dboid);
	}
	PG_END_TRY();
	AfterRoleCommand(parsetree);

	switch (nodeTag(parsetree))
	{
		case T_CreateExtensionStmt:
			if (strcmp(((CreateExtensionStmt *) parsetree)->extname,
					   PROJ_EXTENSION_NAME) == 0)
				ProjNoteLauncherPoke();
			break;
		case T_AlterExtensionStmt:
			if (strcmp(((AlterExtensionStmt *) parsetree)->extname,
					   PROJ_EXTENSION_NAME) == 0)
				ProjNoteLauncherPoke();
			break;
		case T_CreatedbStmt:
			ProjNoteDatabaseCreated();
			break;
		case T_TransactionStmt:
			if (((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
				ProjNotePreparedCommit();
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
