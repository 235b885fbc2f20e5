/*-------------------------------------------------------------------------
 *
 * inline.c
 *	  Inline projections: handlers that run inside the appending
 *	  transaction, from an AFTER INSERT trigger on projections.events.
 *
 * The trigger's WHEN clause calls projections._inline_wanted(event_type),
 * so an append is only queued for the trigger when an active inline
 * projection takes its event type: with no inline projections, appends pay
 * for one cached look-up and nothing else.
 *
 * The list of active inline projections is cached per process.  It is read
 * with a snapshot that sees every committed change, and forgotten on any
 * invalidation of the events relation: switching a projection to or from
 * inline holds a lock that excludes appends and invalidates the events
 * relation at commit, so an appender that gets its lock afterwards always
 * sees the new list.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "compat.h"
#include "projections.h"

PG_FUNCTION_INFO_V1(projections_inline_wanted);
PG_FUNCTION_INFO_V1(projections_events_apply_inline);

typedef struct InlineProjection
{
	char	   *name;
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

static InlineList *inline_list = NULL;
static bool inline_valid = false;
static int	inline_in_use = 0;
static List *inline_retired = NIL;

/*
 * Forget the cached list (invalidation callback).  A list still in use by
 * a trigger running further up the stack is freed once that one is done.
 */
void
ProjInlineInvalidate(void)
{
	inline_valid = false;
}

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
 * Read the active inline projections of this database.
 */
static InlineList *
BuildList(void)
{
	MemoryContext cxt;
	MemoryContext old;
	InlineList *list;
	uint64		i;

	cxt = AllocSetContextCreate(CacheMemoryContext, "projections inline list",
								ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		SPI_connect();
		ProjExecute(PLAN_LIST_INLINE, NULL, NULL, true, 0);

		old = MemoryContextSwitchTo(cxt);
		list = palloc0(sizeof(InlineList));
		list->cxt = cxt;
		list->count = (int) SPI_processed;
		list->items = palloc0(sizeof(InlineProjection) * Max(list->count, 1));
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			InlineProjection *p = &list->items[i];
			bool		isnull;
			bool		types_null;
			char	   *handler;
			Oid			func;
			Oid			owner;
			Datum		types;

			p->name = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
			handler = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
			types = SPI_getbinval(tup, desc, 3, &types_null);
			owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));

			func = ProjResolveFunction(handler);
			if (!OidIsValid(func))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_FUNCTION),
						 errmsg("handler function %s of inline projection \"%s\" does not exist",
								handler, p->name),
						 errhint("Unregister the projection or switch it to async.")));
			if (ProjProcedureAclCheck(func, owner, ACL_EXECUTE) != ACLCHECK_OK)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("role \"%s\" may not execute handler function %s of inline projection \"%s\"",
								GetUserNameFromId(owner, false), handler, p->name)));
			ProjCallPrepare(&p->call, func, owner,
							TextDatumGetCString(SPI_getbinval(tup, desc, 5, &isnull)),
							p->name, cxt);
			if (types_null)
				p->ntypes = -1;
			else
			{
				Datum	   *elems;
				bool	   *elem_nulls;
				int			n;
				int			j;

				deconstruct_array(DatumGetArrayTypeP(types), TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &elem_nulls, &n);
				p->ntypes = 0;
				p->types = palloc(sizeof(char *) * Max(n, 1));
				for (j = 0; j < n; j++)
					if (!elem_nulls[j])
						p->types[p->ntypes++] = TextDatumGetCString(elems[j]);
			}
		}
		MemoryContextSwitchTo(old);
		SPI_finish();
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

	if (proj_trusted_row || PG_ARGISNULL(0))
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

	errcontext("inline projection \"%s\" applying event %s"
			   " (stream \"%s\" version %s, type %s)",
			   c->projection, EventField(c, "global_position"),
			   EventField(c, "stream_id"), EventField(c, "stream_version"),
			   EventField(c, "event_type"));
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
	event = heap_copy_tuple_as_datum(tuple, desc);
	type = TextDatumGetCString(heap_getattr(tuple, SPI_fnumber(desc, "event_type"),
											desc, &isnull));
	ectx.projection = NULL;
	ectx.tuple = tuple;
	ectx.desc = desc;

	list = GetList();
	inline_in_use++;
	PG_TRY();
	{
		int			i;

		callback.callback = InlineErrorCallback;
		callback.arg = &ectx;
		callback.previous = error_context_stack;
		error_context_stack = &callback;
		for (i = 0; i < list->count; i++)
		{
			InlineProjection *p = &list->items[i];

			if (!Wants(p, type))
				continue;
			ectx.projection = p->name;
			ProjCallEnter(&p->call);
			ProjCallEvent(&p->call, event);
			ProjCallLeave(&p->call);
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
