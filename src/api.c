/*-------------------------------------------------------------------------
 *
 * api.c
 *	  SQL-callable functions that register, change, run, rebuild and verify
 *	  projections.
 *
 * Every state change checks first that the caller owns the projection (or
 * is a member of the owning role, or a superuser), then takes the
 * projection's applier lock, so it waits for a batch in progress and no
 * batch starts until it commits.  Names and types passed in are only ever
 * used as parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "settings.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "api.h"
#include "apply.h"
#include "catalog.h"
#include "compat.h"
#include "handler.h"
#include "inline.h"
#include "keys.h"
#include "rebuild.h"
#include "registry.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(projections_register);
PG_FUNCTION_INFO_V1(projections_unregister);
PG_FUNCTION_INFO_V1(projections_pause);
PG_FUNCTION_INFO_V1(projections_resume);
PG_FUNCTION_INFO_V1(projections_rebuild);
PG_FUNCTION_INFO_V1(projections_cancel_rebuild);
PG_FUNCTION_INFO_V1(projections_set_mode);
PG_FUNCTION_INFO_V1(projections_set_tables);
PG_FUNCTION_INFO_V1(projections_run);
PG_FUNCTION_INFO_V1(projections_verify);
PG_FUNCTION_INFO_V1(projections_repair_key_offset);

/*
 * The projection name argument: present, not empty, at most 63 bytes.
 */
char *
ProjNameArg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("projection name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("projection name must not be empty")));
	if (strlen(name) > PROJ_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("projection name is too long"),
				 errdetail("A projection name has at most %d bytes.",
						   PROJ_MAX_NAME_LEN)));
	return name;
}

/*
 * A text argument that must be one of two words.
 */
static char *
ChoiceArg(FunctionCallInfo fcinfo, int argno, const char *what,
		  const char *one, const char *other)
{
	char	   *value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(value, one) != 0 && strcmp(value, other) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", what, value),
				 errhint("Valid values are \"%s\" and \"%s\".", one, other)));
	return value;
}

/*
 * A handler takes one projections.events row (or a projections.events[]
 * array: a batch handler) and returns void; a reset function takes nothing
 * and returns void.  It must not live in a temporary schema, and the caller
 * must be allowed to execute it.  Returns whether it is a batch handler.
 */
static bool
CheckFunction(Oid func, bool is_handler, Oid caller)
{
	const ProjExtInfo *ext = ProjExtGet(false);
	const char *what = is_handler ? "handler" : "reset";
	HeapTuple	tup;
	Form_pg_proc proc;
	bool		ok;
	bool		batch = false;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(func));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s function with OID %u does not exist", what, func)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->prorettype == VOIDOID;
	if (is_handler)
	{
		ok = ok && proc->pronargs == 1 &&
			(proc->proargtypes.values[0] == ext->events_type ||
			 proc->proargtypes.values[0] == ext->events_array_type);
		batch = ok && proc->proargtypes.values[0] == ext->events_array_type;
	}
	else
		ok = ok && proc->pronargs == 0;
	ReleaseSysCache(tup);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s function %s has the wrong signature", what,
						format_procedure(func)),
				 is_handler ?
				 errdetail("A handler takes one argument of type projections.events "
						   "(or projections.events[], a batch handler) and returns void.") :
				 errdetail("A reset function takes no arguments and returns void."),
				 is_handler ?
				 errhint("Declare it as CREATE FUNCTION my_handler(e projections.events) RETURNS void ...") :
				 errhint("Declare it as CREATE FUNCTION my_reset() RETURNS void ...")));
	if (isAnyTempNamespace(get_func_namespace(func)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s function %s is in a temporary schema", what,
						format_procedure(func)),
				 errdetail("A projection outlives the session that registers it."),
				 errhint("Create the function in a permanent schema.")));
	if (ProjProcedureAclCheck(func, caller, ACL_EXECUTE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(func));
	return batch;
}

/*
 * event_types: NULL, or a one-dimensional array of non-empty strings.
 */
static void
CheckEventTypes(ArrayType *types)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (ARR_NDIM(types) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must be a one-dimensional array")));
	deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must not be empty"),
				 errhint("Pass NULL to receive events of every type.")));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("event_types must not contain nulls")));
		if (VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_types must not contain empty strings")));
	}
}

void
ProjWarnIfNoWorker(const char *detail)
{
	if (!ProjWorkerExpected() && !RecoveryInProgress())
		ereport(WARNING,
				(errmsg("no background worker applies async projections in this server"),
				 errdetail_internal("%s", detail),
				 errhint("Add projections to shared_preload_libraries and restart, "
						 "and keep projections.enabled on.")));
}

/*
 * Load a projection for a change by the SQL API: it must exist, the caller
 * must own it (checked before anything else happens), and we hold its
 * applier lock.
 */
static ProjectionDef *
LoadForChange(const char *name)
{
	ProjectionDef *def = ProjCatalogLoadOrError(name);

	ProjCatalogCheckOwner(def);
	(void) ProjCatalogLock(name, PROJ_TARGET_LIVE, true);
	ProjNoteCatalogChange();
	return ProjCatalogLoadOrError(name);
}

/*
 * Hand a projection that may have events to apply to whoever applies it:
 * an inline one is brought up to date and switched on here, in the calling
 * transaction; an async one is the worker's, woken when this transaction
 * commits.
 */
static void
ApplyNext(const char *name, bool is_inline)
{
	ProjApplyResult result;

	if (is_inline)
		ProjApply(name, PROJ_TARGET_LIVE, PROJ_CALLER_RUN, 0, &result);
	else
		ProjWarnIfNoWorker(psprintf("Projection \"%s\" is applied only when projections.run() is called.",
									name));
}

static void
DuplicateName(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("projection \"%s\" already exists", name),
			 errhint("Choose another name, or unregister the existing projection first.")));
}

/*
 * projections.register(name, handler, event_types, mode, reset, on_error,
 *						tables)
 */
Datum
projections_register(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	char	   *mode = ChoiceArg(fcinfo, 3, "mode", "async", "inline");
	char	   *on_error = ChoiceArg(fcinfo, 5, "on_error", "pause", "skip");
	Oid			caller = GetUserId();
	Oid			handler;
	Oid			reset = PG_ARGISNULL(4) ? InvalidOid : PG_GETARG_OID(4);
	Datum		tables = (Datum) 0;
	bool		batch;
	char	   *reset_signature = NULL;
	ProjectionDef existing;

	ProjRequireCurrentVersion();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("handler must not be null")));
	handler = PG_GETARG_OID(1);
	batch = CheckFunction(handler, true, caller);
	if (OidIsValid(reset))
	{
		(void) CheckFunction(reset, false, caller);
		reset_signature = format_procedure_qualified(reset);
	}
	if (!PG_ARGISNULL(2))
		CheckEventTypes(PG_GETARG_ARRAYTYPE_P(2));
	if (PG_NARGS() > 6 && !PG_ARGISNULL(6))
		tables = ProjCheckTables(PG_GETARG_DATUM(6), caller);

	/* (a taken name is refused before waiting for its lock) */
	if (ProjCatalogLoad(name, &existing))
		DuplicateName(name);
	(void) ProjCatalogLock(name, PROJ_TARGET_LIVE, true);
	ProjNoteCatalogChange();
	if (!ProjCatalogInsert(name, format_procedure_qualified(handler),
						   reset_signature,
						   PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
						   !PG_ARGISNULL(2), strcmp(mode, "inline") == 0,
						   strcmp(on_error, "skip") == 0, batch, caller,
						   GetConfigOption("search_path", false, false),
						   tables, tables != (Datum) 0))
		DuplicateName(name);

	ApplyNext(name, strcmp(mode, "inline") == 0);
	PG_RETURN_VOID();
}

/*
 * projections.unregister(name): the projection goes, with its failed
 * events and the shadow model of an online rebuild; its read model stays.
 */
Datum
projections_unregister(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	ProjectionDef *def;

	def = LoadForChange(name);
	if (def->inline_active)
	{
		(void) ProjInlineLockForSwitch(name, true);
		ProjInlineChanged();
	}
	if (def->build_schema != NULL)
		ProjRebuildCancel(def);
	ProjCatalogDelete(name);
	PG_RETURN_VOID();
}

/*
 * projections.pause(name)
 */
Datum
projections_pause(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	ProjectionDef *def;

	def = LoadForChange(name);
	if (def->state == PROJ_STATE_PAUSED)
		ereport(NOTICE,
				(errmsg("projection \"%s\" is already paused", name)));
	else
	{
		if (def->inline_active)
			ProjInlineDeactivate(def);
		ProjCatalogSetState(name, PROJ_STATE_PAUSED);
	}
	PG_RETURN_VOID();
}

/*
 * projections.resume(name): also retries a projection paused by an error.
 */
Datum
projections_resume(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	ProjectionDef *def;

	def = LoadForChange(name);
	if (def->state == PROJ_STATE_ACTIVE)
		ereport(NOTICE,
				(errmsg("projection \"%s\" is not paused", name)));
	else
	{
		ProjCatalogSetState(name, PROJ_STATE_ACTIVE);
		ApplyNext(name, def->is_inline);
	}
	PG_RETURN_VOID();
}

/*
 * Empty the read model: through the reset function, as the projection's
 * owner, or by truncating the declared tables.
 */
static void
ResetReadModel(ProjectionDef *def)
{
	ProjCallProblem problem;
	ProjCall	call;
	Oid			reset;

	if (def->reset == NULL)
	{
		ProjTruncateTables(def);
		return;
	}
	if (!ProjCheckCallable(def->name, "reset", def->reset, def->owner, &reset,
						   &problem))
		ProjRaiseProblem(&problem);
	ProjCallPrepare(&call, reset, def->owner, def->search_path, NULL, def->name,
					CurrentMemoryContext);
	ProjCallReset(&call);
	CommandCounterIncrement();
}

/*
 * projections.rebuild(name, online)
 *
 * Plain: empty the read model (reset function, or the declared tables) and
 * start again from the first event.  An async projection is replayed by the
 * worker; an inline one is replayed here, while appends wait, so that its
 * read model is never seen half-built.
 *
 * Online: build a new model beside the live one (rebuild.c); the worker
 * (or run()) builds it and exchanges it with the live one.
 */
Datum
projections_rebuild(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	bool		online = PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	ProjectionDef *def;

	ProjRequireCurrentVersion();
	def = LoadForChange(name);
	if (online)
	{
		ProjRebuildStartOnline(def);
		ProjWarnIfNoWorker(psprintf("The new model of projection \"%s\" is built only when projections.run() is called.",
									name));
		PG_RETURN_VOID();
	}

	if (def->reset == NULL && def->ntables == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("projection \"%s\" has no reset function and no tables", name),
				 errdetail("rebuild() empties the read model before replaying: through "
						   "the reset function, or by truncating the declared tables."),
				 errhint("Declare its tables with SELECT projections.set_tables(%s, ARRAY['my_table']::regclass[]).",
						 quote_literal_cstr(name))));
	if (def->build_schema != NULL)
		ProjRebuildCancel(def);
	if (def->inline_active)
		ProjInlineDeactivate(def);
	ResetReadModel(def);
	ProjCatalogResetForRebuild(name);
	ApplyNext(name, def->is_inline);
	PG_RETURN_VOID();
}

/*
 * projections.cancel_rebuild(name): drop the half-built model of an online
 * rebuild; nothing else changes.
 */
Datum
projections_cancel_rebuild(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	ProjectionDef *def = ProjCatalogLoadOrError(name);

	ProjCatalogCheckOwner(def);
	(void) ProjCatalogLock(name, PROJ_TARGET_BUILD, true);
	def = ProjCatalogLoadOrError(name);
	if (def->build_schema == NULL)
	{
		ereport(NOTICE,
				(errmsg("projection \"%s\" has no online rebuild under way", name)));
		PG_RETURN_BOOL(false);
	}
	ProjNoteCatalogChange();
	ProjRebuildCancel(def);
	PG_RETURN_BOOL(true);
}

/*
 * projections.set_mode(name, mode): switch between async and inline without
 * losing or repeating an event.
 */
Datum
projections_set_mode(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	char	   *mode = ChoiceArg(fcinfo, 1, "mode", "async", "inline");
	bool		to_inline = strcmp(mode, "inline") == 0;
	ProjectionDef *def;

	def = LoadForChange(name);
	if (def->is_inline == to_inline)
	{
		ereport(NOTICE,
				(errmsg("projection \"%s\" is already %s", name, mode)));
		PG_RETURN_VOID();
	}
	if (!to_inline && def->inline_active)
		ProjInlineDeactivate(def);
	ProjCatalogSetMode(name, to_inline);
	ApplyNext(name, to_inline);
	PG_RETURN_VOID();
}

/*
 * projections.set_tables(name, tables): declare the read-model tables a
 * projection writes (NULL: none).
 */
Datum
projections_set_tables(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	ProjectionDef *def;
	Datum		tables = (Datum) 0;

	ProjRequireCurrentVersion();
	def = LoadForChange(name);
	if (def->build_schema != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot change the tables of projection \"%s\" during an online rebuild", name),
				 errhint("Wait for it to finish, or call projections.cancel_rebuild(%s).",
						 quote_literal_cstr(name))));
	if (!PG_ARGISNULL(1))
		tables = ProjCheckTables(PG_GETARG_DATUM(1), def->owner);
	ProjCatalogSetTables(name, tables, tables != (Datum) 0);
	PG_RETURN_VOID();
}

/*
 * projections.run(name, max_events): apply pending events now, in this
 * session, through the worker's code path.  An online rebuild under way is
 * advanced too (and exchanged when it has caught up).  Returns the number
 * of events applied to the live model.
 */
Datum
projections_run(PG_FUNCTION_ARGS)
{
	char	   *name = ProjNameArg(fcinfo, 0);
	int64		max_events = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	ProjectionDef *def;
	ProjApplyResult result;
	int64		built;

	if (!PG_ARGISNULL(1) && max_events < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be null or at least 0")));
	def = ProjCatalogLoadOrError(name);
	ProjCatalogCheckOwner(def);

	if (def->build_schema != NULL && ProjModelWrittenHere(def))
		ereport(NOTICE,
				(errmsg("the online rebuild of projection \"%s\" was not advanced", name),
				 errdetail("This transaction has written tables: a write of its handler to "
						   "them would go unnoticed."),
				 errhint("Call projections.run() in a transaction of its own to advance it.")));
	else if (def->build_schema != NULL)
	{
		bool		locked_out;

		while (ProjRebuildStep(name, true, &built, &locked_out))
			;
	}
	if (def->state != PROJ_STATE_ACTIVE)
	{
		ereport(NOTICE,
				(errmsg("projection \"%s\" is %s; nothing applied", name,
						ProjStateName(def->state)),
				 errhint("Call projections.resume(%s) first.",
						 quote_literal_cstr(name))));
		PG_RETURN_INT64(0);
	}
	if (!PG_ARGISNULL(1) && max_events == 0)
		PG_RETURN_INT64(0);
	ProjApply(name, PROJ_TARGET_LIVE, PROJ_CALLER_RUN, max_events, &result);
	PG_RETURN_INT64(result.applied);
}

/*
 * projections.verify(name, ignore_columns): build the model from scratch
 * beside the live one, at the live one's frontier, and report per table
 * the rows missing from and extra in the live model.  Changes nothing.
 */
Datum
projections_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = ProjNameArg(fcinfo, 0);
	List	   *ignore = NIL;
	ProjectionDef *def;

	ProjRequireCurrentVersion();
	def = ProjCatalogLoadOrError(name);
	ProjCatalogCheckOwner(def);
	if (!PG_ARGISNULL(1))
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
			if (!nulls[i])
				ignore = lappend(ignore, TextDatumGetCString(elems[i]));
	}
	InitMaterializedSRF(fcinfo, 0);
	ProjVerify(def, ignore, rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}

/*
 * projections.repair_key_offset(): move the ordering-key offset forward if
 * restored events are ahead of this cluster's transaction ids (the worker
 * and pg_restore do it by themselves; this is for restores done with
 * triggers disabled, and servers without the worker).
 */
Datum
projections_repair_key_offset(PG_FUNCTION_ARGS)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot repair the key offset on a standby"),
				 errhint("The primary repairs it; the standby follows.")));
	/* (its lock holds up every append: for the events table's owner only) */
	if (!ProjRelationOwnerCheck(ProjExtGet(false)->events_relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to repair the key offset"),
				 errdetail("Only the owner of projections.events (or a superuser) may.")));
	PG_RETURN_BOOL(ProjRepairKeyOffset(-1));
}
