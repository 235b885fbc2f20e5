/*-------------------------------------------------------------------------
 *
 * inline.c
 *	  Inline projections: handlers that run inside the appending
 *	  transaction, from an AFTER INSERT trigger on projections.events; and
 *	  switching a projection to and from inline.
 *
 * The trigger's WHEN clause calls projections._inline_wanted(event_type),
 * so an append is only queued for the trigger when an active inline
 * projection takes its event type: with no inline projections, appends pay
 * for one cached look-up and nothing else.
 *
 * A per-event handler is called from the trigger.  A batch handler is
 * called once per appending call: append_many() collects its events (see
 * ProjInlineBeginCall) and calls it once with all of them when its inserts
 * are done; an append() or a plain INSERT calls it with one event.
 *
 * The list of active inline projections is cached per process.  It is read
 * with a snapshot that sees every committed change, and forgotten when the
 * catalog relation is invalidated: switching a projection to or from inline
 * holds a lock that excludes appends and invalidates the catalog relation
 * at commit, so an appender that gets its lock on projections.events
 * afterwards (which processes invalidations) always sees the new list.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "settings.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "handler.h"
#include "inline.h"
#include "keys.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(projections_inline_wanted);
PG_FUNCTION_INFO_V1(projections_events_apply_inline);

typedef struct InlineProjection
{
	char	   *name;
	bool		batch;
	ProjCall	call;
	int			ntypes;			/* -1: every type */
	char	  **types;
} InlineProjection;

typedef struct InlineList
{
	MemoryContext cxt;
	int			count;
	InlineProjection *items;
} InlineList;

/* an event kept for a batch handler */
typedef struct PendingEvent
{
	Datum		event;			/* a projections.events row */
	int64		position;		/* its global_position */
	SubTransactionId subid;		/* the subtransaction that inserted it */
} PendingEvent;

/* the events an appending call collected for one batch handler */
typedef struct PendingBatch
{
	InlineProjection *projection;
	List	   *events;			/* PendingEvent */
} PendingBatch;

/* an appending call in progress (append_many), innermost first */
typedef struct InlineCall
{
	struct InlineCall *outer;
	MemoryContext cxt;
	List	   *pending;		/* PendingBatch, in the order first seen */
} InlineCall;

static InlineList *inline_list = NULL;
static bool inline_valid = false;
static int	inline_in_use = 0;
static List *inline_retired = NIL;
static InlineCall *current_call = NULL;
static bool subxact_callback_registered = false;

static ProjStatement max_position_stmt = {
	"SELECT max(e.global_position) FROM projections.events e", 0
};

static void
RetireList(InlineList *list)
{
	if (list == NULL)
		return;
	if (inline_in_use > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		inline_retired = lappend(inline_retired, list->cxt);
		MemoryContextSwitchTo(old);
	}
	else
		MemoryContextDelete(list->cxt);
}

static void
FreeRetired(void)
{
	ListCell   *lc;

	if (inline_in_use > 0 || inline_retired == NIL)
		return;
	foreach(lc, inline_retired)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(inline_retired);
	inline_retired = NIL;
}

/*
 * Read the active inline projections of this database, and look up their
 * handlers: an inline handler that cannot be called fails the append.
 */
static InlineList *
BuildList(void)
{
	MemoryContext cxt;
	MemoryContext old;
	InlineList *list;
	List	   *defs;
	ListCell   *lc;
	int			i = 0;

	cxt = AllocSetContextCreate(CacheMemoryContext, "projections inline list",
								ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		old = MemoryContextSwitchTo(cxt);
		defs = ProjCatalogListInline();
		list = palloc0(sizeof(InlineList));
		list->cxt = cxt;
		list->count = list_length(defs);
		list->items = palloc0(sizeof(InlineProjection) * Max(list->count, 1));
		foreach(lc, defs)
		{
			ProjectionDef *def = (ProjectionDef *) lfirst(lc);
			InlineProjection *p = &list->items[i++];
			ProjCallProblem problem;
			Oid			func;

			if (!ProjCheckCallable(def->name, "handler", def->handler, def->owner,
								   &func, &problem))
				ereport(ERROR,
						(errcode(problem.sqlerrcode),
						 errmsg_internal("%s", problem.message),
						 errhint("Fix it, or pause the projection or switch it to async.")));
			p->name = def->name;
			p->batch = def->batch;
			ProjCallPrepare(&p->call, func, def->owner, def->search_path, NULL,
							def->name, cxt);
			if (!def->has_filter)
				p->ntypes = -1;
			else
			{
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				int			j;

				deconstruct_array(DatumGetArrayTypeP(def->event_types), TEXTOID,
								  -1, false, TYPALIGN_INT, &elems, &nulls, &n);
				p->types = palloc(sizeof(char *) * Max(n, 1));
				for (j = 0; j < n; j++)
					if (!nulls[j])
						p->types[p->ntypes++] = TextDatumGetCString(elems[j]);
			}
		}
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return list;
}

static InlineList *
GetList(void)
{
	if (!inline_valid)
	{
		InlineList *list = BuildList();

		RetireList(inline_list);
		inline_list = list;
		inline_valid = true;
	}
	return inline_list;
}

static bool
Wants(const InlineProjection *p, const char *type)
{
	int			i;

	if (p->ntypes < 0)
		return true;
	for (i = 0; i < p->ntypes; i++)
		if (strcmp(p->types[i], type) == 0)
			return true;
	return false;
}

/*
 * The projections.events row being inserted carries its own keys (a
 * restore): it was applied where it came from.  Set by the BEFORE trigger.
 */
static bool restored_row = false;

void
ProjInlineSkipRow(bool restored)
{
	restored_row = restored;
}

/*
 * projections._inline_wanted(event_type): the WHEN clause of the inline
 * trigger.  False for restored rows (they were applied where they came
 * from) and for types no active inline projection takes.
 */
Datum
projections_inline_wanted(PG_FUNCTION_ARGS)
{
	InlineList *list;
	char	   *type;
	int			i;

	if (restored_row || PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	list = GetList();
	if (list->count == 0)
		PG_RETURN_BOOL(false);
	type = text_to_cstring(PG_GETARG_TEXT_PP(0));
	for (i = 0; i < list->count; i++)
		if (Wants(&list->items[i], type))
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}

typedef struct InlineErrorContext
{
	const char *projection;
	HeapTuple	tuple;
	TupleDesc	desc;
	int			count;			/* events of a batch call, or 0 */
} InlineErrorContext;

/* an event column as text, for the error context (read only on error) */
static char *
EventField(InlineErrorContext *c, const char *column)
{
	char	   *value = SPI_getvalue(c->tuple, c->desc, SPI_fnumber(c->desc, column));

	return value ? value : "?";
}

static void
InlineErrorCallback(void *arg)
{
	InlineErrorContext *c = (InlineErrorContext *) arg;

	if (c->projection == NULL)
		return;
	if (c->count > 0)
		errcontext("inline projection \"%s\" applying a batch of %d events",
				   c->projection, c->count);
	else
		errcontext("inline projection \"%s\" applying event %s"
				   " (stream \"%s\" version %s, type %s)",
				   c->projection, EventField(c, "global_position"),
				   EventField(c, "stream_id"), EventField(c, "stream_version"),
				   EventField(c, "event_type"));
}

/* Call a batch handler with the given events. */
static void
CallBatch(InlineProjection *p, List *events, InlineErrorContext *ectx)
{
	const ProjExtInfo *ext = ProjExtGet(false);
	Datum	   *elems = palloc(sizeof(Datum) * list_length(events));
	int16		typlen;
	bool		typbyval;
	char		typalign;
	ListCell   *lc;
	int			n = 0;

	foreach(lc, events)
		elems[n++] = PointerGetDatum(lfirst(lc));
	get_typlenbyvalalign(ext->events_type, &typlen, &typbyval, &typalign);
	ectx->projection = p->name;
	ectx->count = n;
	ProjCallHandler(&p->call,
					PointerGetDatum(construct_array(elems, n, ext->events_type,
													typlen, typbyval, typalign)));
	ectx->projection = NULL;
	ectx->count = 0;
	CommandCounterIncrement();
}

/*
 * A subtransaction aborts: the events its inserts (and those of the
 * subtransactions under it, which began after it) gave batch handlers were
 * rolled back with them.
 */
static void
InlineSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	InlineCall *call;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (call = current_call; call != NULL; call = call->outer)
	{
		ListCell   *lc;

		foreach(lc, call->pending)
		{
			PendingBatch *b = (PendingBatch *) lfirst(lc);
			ListCell   *ec;

			foreach(ec, b->events)
			{
				if (((PendingEvent *) lfirst(ec))->subid >= mySubid)
					b->events = foreach_delete_current(b->events, ec);
			}
		}
	}
}

/* Order pending events by position. */
static int
PendingEventCmp(const ListCell *a, const ListCell *b)
{
	int64		pa = ((PendingEvent *) lfirst(a))->position;
	int64		pb = ((PendingEvent *) lfirst(b))->position;

	return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/* Keep an event for a batch handler, for the end of the appending call. */
static void
Collect(InlineCall *call, InlineProjection *p, Datum event, int64 position)
{
	MemoryContext old = MemoryContextSwitchTo(call->cxt);
	PendingBatch *batch = NULL;
	PendingEvent *pending;
	ListCell   *lc;

	foreach(lc, call->pending)
	{
		PendingBatch *b = (PendingBatch *) lfirst(lc);

		if (b->projection == p)
			batch = b;
	}
	if (batch == NULL)
	{
		batch = palloc0(sizeof(PendingBatch));
		batch->projection = p;
		call->pending = lappend(call->pending, batch);
	}
	pending = palloc(sizeof(PendingEvent));
	pending->event = event;
	pending->position = position;
	pending->subid = GetCurrentSubTransactionId();
	batch->events = lappend(batch->events, pending);
	MemoryContextSwitchTo(old);
}

/*
 * AFTER INSERT row trigger on projections.events: apply the new event to
 * every active inline projection that takes its type, in name order, as
 * each projection's owner.  A handler error aborts the append; its SQLSTATE
 * is kept, and the context names the projection and the event.
 */
Datum
projections_events_apply_inline(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	Datum		event;
	InlineErrorContext ectx;
	ErrorContextCallback callback;
	InlineList *list;
	char	   *type;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "projections_events_apply_inline must be an AFTER row trigger");

	tuple = trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	type = TextDatumGetCString(heap_getattr(tuple, SPI_fnumber(desc, "event_type"),
											desc, &isnull));
	memset(&ectx, 0, sizeof(ectx));
	ectx.tuple = tuple;
	ectx.desc = desc;

	list = GetList();
	inline_in_use++;
	PG_TRY();
	{
		int			i;

		event = (Datum) 0;
		callback.callback = InlineErrorCallback;
		callback.arg = &ectx;
		callback.previous = error_context_stack;
		error_context_stack = &callback;
		for (i = 0; i < list->count; i++)
		{
			InlineProjection *p = &list->items[i];

			if (!Wants(p, type))
				continue;
			if (p->batch && current_call != NULL)
			{
				MemoryContext old = MemoryContextSwitchTo(current_call->cxt);
				Datum		copy = heap_copy_tuple_as_datum(tuple, desc);

				MemoryContextSwitchTo(old);
				Collect(current_call, p, copy,
						DatumGetInt64(heap_getattr(tuple, SPI_fnumber(desc, "global_position"),
												   desc, &isnull)));
				continue;
			}
			if (event == (Datum) 0)
				event = heap_copy_tuple_as_datum(tuple, desc);
			if (p->batch)
			{
				CallBatch(p, list_make1(DatumGetPointer(event)), &ectx);
				continue;
			}
			ectx.projection = p->name;
			ProjCallHandler(&p->call, event);
			ectx.projection = NULL;
			CommandCounterIncrement();
		}
		error_context_stack = callback.previous;
	}
	PG_FINALLY();
	{
		inline_in_use--;
		FreeRetired();
	}
	PG_END_TRY();

	return PointerGetDatum(NULL);
}

/*
 * An appending call that inserts several events (append_many) begins: the
 * events its inserts give batch handlers are kept until it ends.  The list
 * they refer to stays alive until then.
 */
void *
ProjInlineBeginCall(void)
{
	InlineCall *call = palloc0(sizeof(InlineCall));

	if (!subxact_callback_registered)
	{
		RegisterSubXactCallback(InlineSubXactCallback, NULL);
		subxact_callback_registered = true;
	}
	call->cxt = CurrentMemoryContext;
	call->outer = current_call;
	current_call = call;
	inline_in_use++;
	return call;
}

/* Call each batch handler of an appending call once with its events. */
static void
FlushCall(InlineCall *call)
{
	InlineErrorContext ectx;
	ErrorContextCallback callback;
	ListCell   *lc;

	memset(&ectx, 0, sizeof(ectx));
	callback.callback = InlineErrorCallback;
	callback.arg = &ectx;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	foreach(lc, call->pending)
	{
		PendingBatch *b = (PendingBatch *) lfirst(lc);
		List	   *events = NIL;
		ListCell   *ec;

		/* (events of nested appends may have come first) */
		list_sort(b->events, PendingEventCmp);
		foreach(ec, b->events)
			events = lappend(events, DatumGetPointer(((PendingEvent *) lfirst(ec))->event));
		if (events != NIL)
			CallBatch(b->projection, events, &ectx);
	}
	error_context_stack = callback.previous;
}

/*
 * The appending call ends: with flush (its inserts succeeded), call each
 * batch handler once with its events.  Called on every path (also errors,
 * without flush).
 */
void
ProjInlineEndCall(void *arg, bool flush)
{
	InlineCall *call = (InlineCall *) arg;

	current_call = call->outer;
	PG_TRY();
	{
		if (flush)
			FlushCall(call);
	}
	PG_CATCH();
	{
		inline_in_use--;
		FreeRetired();
		PG_RE_THROW();
	}
	PG_END_TRY();
	inline_in_use--;
	FreeRetired();
}

/*
 * Lock the events table against appends, to switch a projection between
 * inline and async, waiting at most projections.inline_switch_timeout: a
 * long wait would queue every appender behind the switch.  Returns false on
 * timeout, or raises a clear error when raise is set (the SQL API; the
 * worker tries again later).
 */
bool
ProjInlineLockForSwitch(const char *name, bool raise)
{
	if (ProjLockTimeout(ProjExtGet(false)->events_relid, ShareRowExclusiveLock,
						proj_inline_switch_timeout_ms))
		return true;
	if (raise)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not switch projection \"%s\" between async and inline", name),
				 errdetail("Appends to projections.events did not pause within "
						   "projections.inline_switch_timeout (%d ms): a transaction "
						   "that appended events is still open.",
						   proj_inline_switch_timeout_ms),
				 errhint("Try again when it has ended, or raise projections.inline_switch_timeout.")));
	return false;
}

/*
 * Switch an inline projection off: lock out appends, then set the
 * checkpoint so that the async path starts exactly after what inline
 * applied.  Every event committed so far has a position at or below the
 * current maximum and was applied; every event committed later has a key
 * at or above the current safe key.  So the frontier is "everything below
 * the safe key" plus "nothing at or below this position".
 */
void
ProjInlineDeactivate(ProjectionDef *def)
{
	ProjFrontier f;
	bool		isnull;
	int64		max_position = 0;

	(void) ProjInlineLockForSwitch(def->name, true);
	SPI_connect();
	ProjRun(&max_position_stmt, NULL, NULL, true, 1);
	if (SPI_processed > 0)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			max_position = DatumGetInt64(d);
	}
	SPI_finish();
	f.key = ProjSafeKey(GetLatestSnapshot()) - 1;
	f.pos = PG_INT64_MAX;
	f.skip_position = max_position;
	f.position = Max(max_position, def->live.position);
	ProjCatalogSetLiveFrontier(def->name, &f, false);
	def->inline_active = false;
	def->live = f;
	ProjInlineChanged();
}

/*
 * The set of active inline projections changed: every process reads it
 * again after this transaction commits.
 */
void
ProjInlineChanged(void)
{
	CacheInvalidateRelcacheByRelid(ProjExtGet(false)->catalog_relid);
}

/* Relcache callback: forget the list when the catalog relation changes. */
static void
InvalidateList(Datum arg, Oid relid)
{
	const ProjExtInfo *ext = ProjExtPeek();

	if (!OidIsValid(relid) || ext == NULL || relid == ext->catalog_relid)
		inline_valid = false;
}

/* A function or schema changed: the handlers are looked up again. */
static void
InvalidateHandlers(Datum arg, int cacheid, uint32 hashvalue)
{
	inline_valid = false;
}

void
ProjInlineInit(void)
{
	CacheRegisterRelcacheCallback(InvalidateList, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, InvalidateHandlers, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, InvalidateHandlers, (Datum) 0);
}
