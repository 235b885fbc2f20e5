/*-------------------------------------------------------------------------
 *
 * events.c
 *	  The event store: append, append_many, and the triggers that give a
 *	  plain INSERT into projections.events the same guarantees as append.
 *
 * Every append, by any path, goes through the BEFORE INSERT trigger, which
 * advances the stream's row in projections.streams (an upsert that returns
 * the new version and ordering key) and assigns the global position.  The
 * stream's row stays locked until the appending transaction ends, so two
 * concurrent appends to one stream serialize on it, and the second sees the
 * first's version: with an expected version it fails with SQLSTATE 40001,
 * without one it takes the next version.  Row locks live in the tuples, not
 * in the lock table, so one transaction may append to any number of streams.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "settings.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "compat.h"
#include "events.h"
#include "handler.h"
#include "inline.h"
#include "keys.h"
#include "registry.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(projections_append);
PG_FUNCTION_INFO_V1(projections_append_many);
PG_FUNCTION_INFO_V1(projections_events_before_insert);
PG_FUNCTION_INFO_V1(projections_events_refuse_change);

/* columns of projections.events, in table order */
#define EV_GLOBAL_POSITION	0
#define EV_STREAM_ID		1
#define EV_STREAM_VERSION	2
#define EV_EVENT_TYPE		3
#define EV_DATA				4
#define EV_METADATA			5
#define EV_RECORDED_AT		6
#define EV_ORDERING_KEY		7
#define EV_NCOLUMNS			8

static const char *const event_columns[EV_NCOLUMNS] = {
	"global_position", "stream_id", "stream_version", "event_type",
	"data", "metadata", "recorded_at", "ordering_key"
};

/* attribute numbers (0-based) of those columns, for events_relid */
static Oid	events_relid = InvalidOid;
static int	events_col[EV_NCOLUMNS];

#define INSERT_EVENT_SQL \
	"INSERT INTO projections.events (stream_id, stream_version, event_type," \
	" data, metadata) VALUES ($1, $2, $3, $4, $5) RETURNING global_position"

static ProjStatement insert_event_stmt = {
	INSERT_EVENT_SQL, 5, {TEXTOID, INT4OID, TEXTOID, JSONBOID, JSONBOID}
};

/* the stream's next version, and the key its events may not go below */
static ProjStatement advance_stream_stmt = {
	"INSERT INTO projections.streams AS s (stream_id, version, last_key)"
	" VALUES ($1, 1, $2)"
	" ON CONFLICT (stream_id) DO UPDATE SET version = s.version + 1,"
	" last_key = greatest(s.last_key, excluded.last_key)"
	" RETURNING s.version, s.last_key",
	2, {TEXTOID, INT8OID}
};

/* a restored event's stream follows it */
static ProjStatement restore_stream_stmt = {
	"INSERT INTO projections.streams AS s (stream_id, version, last_key)"
	" VALUES ($1, $2, $3)"
	" ON CONFLICT (stream_id) DO UPDATE SET"
	" version = greatest(s.version, excluded.version),"
	" last_key = greatest(s.last_key, excluded.last_key)",
	3, {TEXTOID, INT4OID, INT8OID}
};

/*
 * Check the expected version against the stream's head.  A mismatch is a
 * serialization failure: the client re-reads the stream and retries.
 */
static void
CheckExpectedVersion(const char *stream_id, int32 expected, int32 actual)
{
	if (expected != actual)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("wrong expected version for stream \"%s\"", stream_id),
				 errdetail("Expected version %d, but the stream is at version %d.",
						   expected, actual),
				 errhint("Read the stream again and retry, as after any "
						 "serialization failure.")));
}

static void
CheckText(const char *what, text *value)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	if (VARSIZE_ANY_EXHDR(value) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
}

static const char *
JsonbRootName(Jsonb *jb)
{
	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	v;

		if (JsonbExtractScalar(&jb->root, &v))
			return JsonbTypeName(&v);
		return "scalar";
	}
	return JB_ROOT_IS_ARRAY(jb) ? "array" : "object";
}

static void
CheckObject(const char *what, Jsonb *value)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	if (!JB_ROOT_IS_OBJECT(value) || JB_ROOT_IS_SCALAR(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what),
				 errdetail("The value given is a JSON %s.", JsonbRootName(value))));
}

/*
 * Validate the user-supplied parts of an event.
 */
static void
CheckEvent(text *stream_id, text *event_type, Jsonb *data, Jsonb *metadata)
{
	CheckText("stream_id", stream_id);
	CheckText("event_type", event_type);
	CheckObject("data", data);
	CheckObject("metadata", metadata);
}

static Jsonb *
EmptyObject(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
}

static int32
CheckExpectedArg(FunctionCallInfo fcinfo, int argno)
{
	int32		expected;

	if (PG_ARGISNULL(argno))
		return -1;
	expected = PG_GETARG_INT32(argno);
	if (expected < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected_version must be null or at least 0"),
				 errdetail("The value given is %d.", expected),
				 errhint("Use 0 for a stream that must not exist yet.")));
	return expected;
}

/*
 * Re-throw the current error without the context line SPI adds for our
 * internal INSERT: an error from an inline handler (or a constraint) reads
 * as an error of append(), with the handler's own context.  The line is
 * compared in the server's message language, as SPI wrote it.
 */
static void
RethrowWithoutInsertContext(MemoryContext cxt)
{
	ErrorData  *edata;
	char	   *line;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	line = psprintf(dgettext(PG_TEXTDOMAIN("postgres"), "SQL statement \"%s\""),
					INSERT_EVENT_SQL);
	if (edata->context != NULL)
	{
		size_t		len = strlen(edata->context);
		size_t		linelen = strlen(line);

		if (len == linelen && strcmp(edata->context, line) == 0)
			edata->context = NULL;
		else if (len > linelen &&
				 strcmp(edata->context + len - linelen, line) == 0 &&
				 edata->context[len - linelen - 1] == '\n')
			edata->context[len - linelen - 1] = '\0';
	}
	ReThrowError(edata);
}

/*
 * Insert one event through the events table, whose trigger assigns its
 * version, key and position (and checks the expected version, passed as
 * stream_version = expected + 1).  Returns its global position.
 */
static int64
InsertEvent(text *stream_id, int32 expected, text *event_type, Jsonb *data,
			Jsonb *metadata)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		position;

	values[0] = PointerGetDatum(stream_id);
	if (expected >= 0)
		values[1] = Int32GetDatum(expected + 1);
	else
		nulls[1] = 'n';
	values[2] = PointerGetDatum(event_type);
	values[3] = JsonbPGetDatum(data);
	values[4] = JsonbPGetDatum(metadata);

	PG_TRY();
	{
		ProjRun(&insert_event_stmt, values, nulls, false, 0);
	}
	PG_CATCH();
	{
		RethrowWithoutInsertContext(caller_cxt);
	}
	PG_END_TRY();

	position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return position;
}

/*
 * projections.append(stream_id, event_type, data, metadata, expected_version)
 *
 * Append one event to a stream and return its global position.
 */
Datum
projections_append(PG_FUNCTION_ARGS)
{
	text	   *stream_id = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *event_type = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	Jsonb	   *data = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	Jsonb	   *metadata = PG_ARGISNULL(3) ? EmptyObject() : PG_GETARG_JSONB_P(3);
	int32		expected = CheckExpectedArg(fcinfo, 4);
	int64		position;

	CheckEvent(stream_id, event_type, data, metadata);
	(void) ProjExtGet(false);

	SPI_connect();
	position = InsertEvent(stream_id, expected, event_type, data, metadata);
	SPI_finish();

	PG_RETURN_INT64(position);
}

/*
 * Read a member of one element of append_many's array.
 */
static bool
ElementMember(JsonbContainer *element, const char *key, JsonbValue *value)
{
	return getKeyJsonValueFromContainer(element, key, strlen(key), value) != NULL;
}

static void
ElementError(int index, const char *message)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("element %d of events %s", index + 1, message),
			 errhint("Each element is an object like "
					 "{\"type\": \"OrderCreated\", \"data\": {...}, "
					 "\"metadata\": {...}}; metadata is optional.")));
}

/*
 * projections.append_many(stream_id, events, expected_version)
 *
 * Append several events to one stream atomically: every element of the
 * JSON array events ({"type": ..., "data": {...}, "metadata": {...}})
 * becomes one event, with consecutive versions.  Returns their global
 * positions, in order.
 */
Datum
projections_append_many(PG_FUNCTION_ARGS)
{
	text	   *stream_id = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	Jsonb	   *events = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	int32		expected = CheckExpectedArg(fcinfo, 2);
	int			count;
	text	  **types;
	Jsonb	  **datas;
	Jsonb	  **metas;
	Datum	   *positions;
	void	   *call;
	int			i;

	CheckText("stream_id", stream_id);
	if (events == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("events must not be null")));
	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array"),
				 errdetail("The value given is a JSON %s.", JsonbRootName(events))));
	count = JB_ROOT_COUNT(events);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must not be an empty array")));

	/* validate every element before appending any */
	types = palloc(sizeof(text *) * count);
	datas = palloc(sizeof(Jsonb *) * count);
	metas = palloc(sizeof(Jsonb *) * count);
	for (i = 0; i < count; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&events->root, i);
		JsonbValue	v;

		if (elem == NULL || elem->type != jbvBinary ||
			!JsonContainerIsObject(elem->val.binary.data))
			ElementError(i, "is not a JSON object");
		if (!ElementMember(elem->val.binary.data, "type", &v) ||
			v.type != jbvString || v.val.string.len == 0)
			ElementError(i, "needs \"type\", a non-empty string");
		types[i] = cstring_to_text_with_len(v.val.string.val, v.val.string.len);
		if (!ElementMember(elem->val.binary.data, "data", &v) ||
			v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ElementError(i, "needs \"data\", a JSON object");
		datas[i] = JsonbValueToJsonb(&v);
		if (!ElementMember(elem->val.binary.data, "metadata", &v) ||
			v.type == jbvNull)
			metas[i] = EmptyObject();
		else if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ElementError(i, "has \"metadata\" that is not a JSON object");
		else
			metas[i] = JsonbValueToJsonb(&v);
	}

	(void) ProjExtGet(false);

	/*
	 * The first insert checks the expected version and locks the stream.
	 * Inline batch handlers get the call's events at once, at the end.
	 */
	positions = palloc(sizeof(Datum) * count);
	call = ProjInlineBeginCall();
	PG_TRY();
	{
		SPI_connect();
		for (i = 0; i < count; i++)
			positions[i] = Int64GetDatum(InsertEvent(stream_id, i == 0 ? expected : -1,
													 types[i], datas[i], metas[i]));
		SPI_finish();
	}
	PG_CATCH();
	{
		ProjInlineEndCall(call, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ProjInlineEndCall(call, true);

	PG_RETURN_ARRAYTYPE_P(construct_array(positions, count, INT8OID, 8,
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * The attribute numbers of the events columns, looked up once per process
 * (and again when the events relation changes).
 */
static const int *
EventColumns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (RelationGetRelid(rel) == events_relid)
		return events_col;
	for (i = 0; i < EV_NCOLUMNS; i++)
	{
		int			attnum = SPI_fnumber(desc, event_columns[i]);

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("projections.events has no column \"%s\"",
							event_columns[i])));
		events_col[i] = attnum - 1;
	}
	events_relid = RelationGetRelid(rel);
	return events_col;
}

/* Relcache callback: look the columns up again when the relation changes. */
static void
InvalidateEventColumns(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == events_relid)
		events_relid = InvalidOid;
}

/* One column of the row being inserted, or NULL. */
static Datum
Column(HeapTuple tuple, TupleDesc desc, const int *col, int which, bool *isnull)
{
	return heap_getattr(tuple, col[which] + 1, desc, isnull);
}

/*
 * A row that carries its own global_position and ordering_key: only the
 * table's owner may insert one, which is what pg_restore does when it
 * reloads a dump.  The row is kept as it is; if its key is ahead of this
 * cluster's transaction ids, the restoring transaction moves the key offset
 * forward before it commits (keys.c).
 */
static void
AcceptRestoredRow(Relation rel, HeapTuple tuple, const int *col)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum		values[EV_NCOLUMNS];
	bool		isnull;
	int			i;

	if (!ProjRelationOwnerCheck(RelationGetRelid(rel), GetUserId()))
	{
		(void) Column(tuple, desc, col, EV_GLOBAL_POSITION, &isnull);
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("cannot insert a non-default value into column \"%s\"",
						isnull ? "ordering_key" : "global_position"),
				 errdetail("Columns \"global_position\" and \"ordering_key\" are "
						   "assigned by projections."),
				 errhint("Use projections.append(), or leave both columns out "
						 "of the INSERT.")));
	}

	for (i = 0; i < EV_NCOLUMNS; i++)
	{
		values[i] = Column(tuple, desc, col, i, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a restored event needs a value for column \"%s\"",
							event_columns[i]),
					 errdetail("A row that gives global_position or ordering_key "
							   "is taken as restored and must give every column.")));
	}

	CheckObject("data", DatumGetJsonbP(values[EV_DATA]));
	CheckObject("metadata", DatumGetJsonbP(values[EV_METADATA]));
	ProjKeyRestored(DatumGetInt64(values[EV_ORDERING_KEY]));

	/* the stream's row follows the restored events */
	{
		Datum		args[3];

		args[0] = values[EV_STREAM_ID];
		args[1] = values[EV_STREAM_VERSION];
		args[2] = values[EV_ORDERING_KEY];
		SPI_connect();
		ProjRun(&restore_stream_stmt, args, NULL, false, 0);
		SPI_finish();
	}
	ProjInlineSkipRow(true);
}

/*
 * BEFORE INSERT row trigger on projections.events: assign version, ordering
 * key and global position, exactly as append() does.  A stream_version
 * given in the INSERT is taken as an expected version (the stream must be
 * at stream_version - 1).
 */
Datum
projections_events_before_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tuple;
	const int  *col;
	Datum		stream_id;
	Datum		given_version;
	bool		stream_null;
	bool		type_null;
	bool		data_null;
	bool		meta_null;
	bool		version_null;
	bool		position_null;
	bool		key_null;
	bool		isnull;
	Datum		type;
	Datum		data;
	Datum		meta;
	int32		version;
	int64		key;
	int			repl_cols[3];
	Datum		repl_values[3];
	bool		repl_nulls[3] = {false, false, false};

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		elog(ERROR, "projections_events_before_insert must be a BEFORE INSERT row trigger");

	/* (an append made while replaying would be made again by every replay) */
	if (ProjInReplayingCall() || ProjAppendsRefused())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a handler replaying the history cannot append events"),
				 errdetail("A rebuild (plain or online) or verify() replays the history: "
						   "every replay would append again.")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	tuple = trigdata->tg_trigtuple;
	col = EventColumns(rel);
	ProjInlineSkipRow(false);

	(void) Column(tuple, desc, col, EV_GLOBAL_POSITION, &position_null);
	(void) Column(tuple, desc, col, EV_ORDERING_KEY, &key_null);
	if (!position_null || !key_null)
	{
		AcceptRestoredRow(rel, tuple, col);
		ProjNoteAppend();
		return PointerGetDatum(tuple);
	}

	stream_id = Column(tuple, desc, col, EV_STREAM_ID, &stream_null);
	type = Column(tuple, desc, col, EV_EVENT_TYPE, &type_null);
	data = Column(tuple, desc, col, EV_DATA, &data_null);
	meta = Column(tuple, desc, col, EV_METADATA, &meta_null);
	CheckEvent(stream_null ? NULL : DatumGetTextPP(stream_id),
			   type_null ? NULL : DatumGetTextPP(type),
			   data_null ? NULL : DatumGetJsonbP(data),
			   meta_null ? NULL : DatumGetJsonbP(meta));
	given_version = Column(tuple, desc, col, EV_STREAM_VERSION, &version_null);
	if (!version_null && DatumGetInt32(given_version) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream_version must be at least 1"),
				 errhint("Leave stream_version out to append at the end "
						 "of the stream.")));

	/* advance the stream: next version, and its key */
	{
		Datum		args[2];

		args[0] = stream_id;
		args[1] = Int64GetDatum(ProjNewKeyBase());
		SPI_connect();
		ProjRun(&advance_stream_stmt, args, NULL, false, 1);
		version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
		key = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 2, &isnull));
		SPI_finish();
	}
	if (!version_null)
		CheckExpectedVersion(TextDatumGetCString(stream_id),
							 DatumGetInt32(given_version) - 1, version - 1);

	repl_cols[0] = col[EV_STREAM_VERSION] + 1;
	repl_values[0] = Int32GetDatum(version);
	repl_cols[1] = col[EV_ORDERING_KEY] + 1;
	repl_values[1] = Int64GetDatum(key);
	repl_cols[2] = col[EV_GLOBAL_POSITION] + 1;
	repl_values[2] = Int64GetDatum(nextval_internal(ProjExtGet(false)->sequence_relid,
													false));
	ProjNoteAppend();
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 3, repl_cols,
													 repl_values, repl_nulls));
}

/*
 * BEFORE UPDATE, DELETE and TRUNCATE statement trigger on projections.events:
 * events are immutable.  The table's owner may change them after setting
 * projections.maintenance, for the maintenance documented in the README
 * (erasing personal data from payloads, removing test streams).
 */
Datum
projections_events_refuse_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "projections_events_refuse_change must be called as a trigger");

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		what = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		what = "DELETE";
	else
		what = "TRUNCATE";

	if (proj_maintenance &&
		ProjRelationOwnerCheck(RelationGetRelid(trigdata->tg_relation), GetUserId()))
		return PointerGetDatum(NULL);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("events are immutable"),
			 errdetail("%s of projections.events is not allowed.", what),
			 errhint("Append a compensating event instead.  For maintenance, the "
					 "table's owner can SET projections.maintenance = on.")));
	return PointerGetDatum(NULL);
}

void
ProjEventsInit(void)
{
	CacheRegisterRelcacheCallback(InvalidateEventColumns, (Datum) 0);
}
