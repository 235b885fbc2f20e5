/*-------------------------------------------------------------------------
 *
 * handler.c
 *	  Calling user code as its owner: resolving handlers and reset
 *	  functions, checking that their owner may call them, and calling them
 *	  inside a boundary that nothing they do can cross.
 *
 * Every call of a handler or reset function, in every mode (the worker,
 * run(), inline in an appender's session, rebuild's reset), goes through
 * ProjCallHandler / ProjCallReset, which
 *
 *	- become the projection's owner in a security-restricted operation (the
 *	  handler cannot SET ROLE back to its caller or to the worker's
 *	  superuser);
 *	- open a GUC nest level, set the search_path captured at registration
 *	  with pg_temp forced last (so a caller's temporary objects never
 *	  capture the handler's names), and roll every setting back at the end
 *	  of the call: whatever the handler SETs ends with the call;
 *	- suspend the catalog guard's exemption (the extension's own INSERT
 *	  fires inline handlers: they must not write the catalog through it);
 *	- arm projections.handler_timeout.
 *
 * One classification of errors decides what is retried and what is the
 * event's (ProjErrorIsTransient).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "settings.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/varlena.h"

#include "compat.h"
#include "handler.h"
#include "registry.h"

/* resolved signatures, forgotten when a function or schema changes */
typedef struct FuncCacheEntry
{
	char	   *signature;		/* hash key, in CacheMemoryContext */
	Oid			func;
} FuncCacheEntry;

static HTAB *func_cache = NULL;

/* projections.handler_timeout */
static TimeoutId handler_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t timeout_fired = false;
static bool last_call_timed_out = false;
/* when the running call's time is up (0: no call, or no limit) */
static TimestampTz handler_deadline = 0;
/* calls under way that replay the history (nested in one another) */
static int	replaying_calls = 0;

static uint32
SignatureHash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
SignatureMatch(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

static void *
SignatureCopy(void *dest, const void *src, Size keysize)
{
	*(char **) dest = MemoryContextStrdup(CacheMemoryContext, *(char *const *) src);
	return dest;
}

/* Forget resolved functions (a function or a schema changed). */
static void
InvalidateFunctions(Datum arg, int cacheid, uint32 hashvalue)
{
	if (func_cache != NULL)
	{
		HASH_SEQ_STATUS seq;
		FuncCacheEntry *entry;

		hash_seq_init(&seq, func_cache);
		while ((entry = hash_seq_search(&seq)) != NULL)
			pfree(entry->signature);
		hash_destroy(func_cache);
		func_cache = NULL;
	}
}

/*
 * The function named by a stored signature, or InvalidOid if it no longer
 * exists or lives in a temporary schema (another session's objects are
 * never called).  Signatures are stored schema-qualified and resolved under
 * the pinned search_path.  Cached per process until pg_proc or
 * pg_namespace changes.
 */
Oid
ProjResolveFunction(const char *signature)
{
	FuncCacheEntry *entry;
	bool		found;
	Oid			func;
	int			level;
	Oid			saved_user;
	int			saved_sec;

	if (func_cache != NULL)
	{
		entry = hash_search(func_cache, &signature, HASH_FIND, &found);
		if (found)
			return entry->func;
	}

	/*
	 * As the extension's owner: the caller (an appender running inline
	 * handlers) needs no USAGE on the schemas of other owners' handlers.
	 */
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(ProjExtGet(false)->owner,
						   saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	level = ProjPinSearchPath();
	{
		LOCAL_FCINFO(fcinfo, 1);
		Datum		result;

		InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = CStringGetTextDatum(signature);
		fcinfo->args[0].isnull = false;
		result = to_regprocedure(fcinfo);
		func = fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);
	}
	ProjUnpinSearchPath(level);
	SetUserIdAndSecContext(saved_user, saved_sec);
	if (OidIsValid(func) && isAnyTempNamespace(get_func_namespace(func)))
		func = InvalidOid;
	if (!OidIsValid(func))
		return InvalidOid;

	/* (the look-up may have processed an invalidation) */
	if (func_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(FuncCacheEntry);
		ctl.hash = SignatureHash;
		ctl.match = SignatureMatch;
		ctl.keycopy = SignatureCopy;
		ctl.hcxt = CacheMemoryContext;
		func_cache = hash_create("projections functions", 16, &ctl,
								 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
								 HASH_KEYCOPY | HASH_CONTEXT);
	}
	entry = hash_search(func_cache, &signature, HASH_ENTER, &found);
	entry->func = func;
	return func;
}

/*
 * Resolve a projection's handler or reset function and check that its
 * owner still exists and may execute it.  On a problem, describe it and
 * return false: the apply engine records it, the SQL API raises it.
 */
bool
ProjCheckCallable(const char *projection, const char *what,
				  const char *signature, Oid owner, Oid *func,
				  ProjCallProblem *problem)
{
	*func = ProjResolveFunction(signature);
	if (!OidIsValid(*func))
	{
		problem->sqlerrcode = ERRCODE_UNDEFINED_FUNCTION;
		problem->message = psprintf("%s function %s does not exist", what, signature);
	}
	else if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
	{
		problem->sqlerrcode = ERRCODE_UNDEFINED_OBJECT;
		problem->message = psprintf("the role that owns projection \"%s\" no longer exists",
									projection);
	}
	else if (ProjProcedureAclCheck(*func, owner, ACL_EXECUTE) != ACLCHECK_OK)
	{
		problem->sqlerrcode = ERRCODE_INSUFFICIENT_PRIVILEGE;
		problem->message = psprintf("role \"%s\" may not execute %s function %s",
									GetUserNameFromId(owner, false), what, signature);
	}
	else
		return true;
	return false;
}

void
ProjRaiseProblem(const ProjCallProblem *problem)
{
	ereport(ERROR,
			(errcode(problem->sqlerrcode),
			 errmsg_internal("%s", problem->message)));
}

/*
 * The search_path a call runs under: first_schema (the shadow model of an
 * online rebuild) if given, then the path captured at registration without
 * any temporary schema, then pg_temp, last.
 */
char *
ProjCallSearchPath(const char *registered, const char *first_schema)
{
	StringInfoData buf;
	char	   *raw = pstrdup(registered);
	List	   *names;
	ListCell   *lc;

	initStringInfo(&buf);
	if (first_schema != NULL)
		appendStringInfo(&buf, "%s, ", quote_identifier(first_schema));
	if (SplitIdentifierString(raw, ',', &names))
	{
		foreach(lc, names)
		{
			const char *name = (const char *) lfirst(lc);

			if (strcmp(name, "pg_temp") == 0 || strncmp(name, "pg_temp_", 8) == 0)
				continue;
			appendStringInfo(&buf, "%s, ", quote_identifier(name));
		}
	}
	appendStringInfoString(&buf, "pg_temp");
	return buf.data;
}

/*
 * Look up a handler or reset function for repeated calls.
 */
void
ProjCallPrepare(ProjCall *call, Oid func, Oid owner, const char *registered_path,
				const char *first_schema, const char *projection,
				MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	fmgr_info_cxt(func, &call->flinfo, cxt);
	call->owner = owner;
	call->search_path = ProjCallSearchPath(registered_path, first_schema);
	call->projection = projection;
	call->replaying = first_schema != NULL;
	MemoryContextSwitchTo(old);
}

static void
HandlerTimeoutHandler(void)
{
	timeout_fired = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/*
 * Call user code with nargs (0 or 1) arguments inside the boundary.
 */
static void
CallBounded(ProjCall *call, int nargs, Datum arg)
{
	LOCAL_FCINFO(fcinfo, 1);
	MemoryContext cxt = CurrentMemoryContext;
	Oid			saved_user;
	int			saved_sec;
	int			saved_writes;
	int			level;
	TimestampTz outer_deadline = handler_deadline;
	bool		timed;

	/*
	 * A call inside another (an inline handler that appends) ends by the
	 * outer call's deadline at the latest, and gives it back when it ends.
	 */
	handler_deadline = 0;
	if (proj_handler_timeout_ms > 0)
		handler_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   proj_handler_timeout_ms);
	if (outer_deadline != 0 &&
		(handler_deadline == 0 || outer_deadline < handler_deadline))
		handler_deadline = outer_deadline;
	timed = handler_deadline != 0;
	if (call->replaying)
		replaying_calls++;

	last_call_timed_out = false;
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(call->owner,
						   saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	level = NewGUCNestLevel();
	(void) set_config_option("search_path", call->search_path,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	saved_writes = ProjSuspendInternalWrites();
	if (timed)
	{
		if (handler_timeout_id == MAX_TIMEOUTS)
			handler_timeout_id = RegisterTimeout(USER_TIMEOUT, HandlerTimeoutHandler);
		timeout_fired = false;
		enable_timeout_at(handler_timeout_id, handler_deadline);
	}

	PG_TRY();
	{
		InitFunctionCallInfoData(*fcinfo, &call->flinfo, nargs, InvalidOid, NULL, NULL);
		if (nargs > 0)
		{
			fcinfo->args[0].value = arg;
			fcinfo->args[0].isnull = false;
		}
		(void) FunctionCallInvoke(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (timed)
			disable_timeout(handler_timeout_id, false);
		if (call->replaying)
			replaying_calls--;
		handler_deadline = outer_deadline;
		/* (an outer call that catches the error keeps its time limit) */
		if (outer_deadline != 0 && outer_deadline > GetCurrentTimestamp() && !timeout_fired)
			enable_timeout_at(handler_timeout_id, outer_deadline);
		ProjResumeInternalWrites(saved_writes);
		if (!timed || !timeout_fired)
			PG_RE_THROW();

		/* the time limit cancelled the call: say so */
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		FlushErrorState();
		timeout_fired = false;
		last_call_timed_out = true;
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("%s of projection \"%s\" ran longer than projections.handler_timeout (%d ms)",
						nargs > 0 ? "handler" : "reset function",
						call->projection, proj_handler_timeout_ms),
				 edata->context ? (errcontext("%s", edata->context)) : 0));
	}
	PG_END_TRY();

	if (timed)
	{
		disable_timeout(handler_timeout_id, false);
		/* it fired as the call returned: the call finished, no cancel */
		if (timeout_fired)
		{
			timeout_fired = false;
			QueryCancelPending = false;
		}
		/* the outer call's limit again (already past: it is cancelled) */
		handler_deadline = outer_deadline;
		if (outer_deadline != 0)
			enable_timeout_at(handler_timeout_id, outer_deadline);
	}
	if (call->replaying)
		replaying_calls--;
	ProjResumeInternalWrites(saved_writes);
	AtEOXact_GUC(false, level);
	SetUserIdAndSecContext(saved_user, saved_sec);
	MemoryContextSwitchTo(cxt);
}

/*
 * Whether a handler replaying the history is running: it must not add to
 * it (an append would be made again by every replay).
 */
bool
ProjInReplayingCall(void)
{
	return replaying_calls > 0;
}

/* Call a handler with one event, or with an array of events. */
void
ProjCallHandler(ProjCall *call, Datum arg)
{
	CallBounded(call, 1, arg);
}

/* Call a reset function. */
void
ProjCallReset(ProjCall *call)
{
	CallBounded(call, 0, (Datum) 0);
}

/* Whether the last call that failed was stopped by projections.handler_timeout. */
bool
ProjCallTimedOut(void)
{
	return last_call_timed_out;
}

/*
 * Errors that say nothing about the event: the batch is retried later (a
 * bounded number of times), the event is neither skipped nor blamed.
 * Deterministic errors (program limits such as stack depth, a call stopped
 * by the handler's own time limit) are the event's.
 */
bool
ProjErrorIsTransient(int sqlerrcode, bool timed_out)
{
	if (timed_out)
		return false;
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_TRANSACTION_ROLLBACK:	/* 40: serialization, deadlock */
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53: out of memory, disk */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57: cancel, shutdown */
		case ERRCODE_SYSTEM_ERROR:	/* 58: I/O */
			return true;
		default:
			return sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
				sqlerrcode == ERRCODE_OBJECT_IN_USE;
	}
}

void
ProjHandlerInit(void)
{
	CacheRegisterSyscacheCallback(PROCOID, InvalidateFunctions, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, InvalidateFunctions, (Datum) 0);
}
