/*-------------------------------------------------------------------------
 *
 * rebuild.c
 *	  Read-model tables: a projection's declared tables, the online rebuild
 *	  that builds a new model beside the live one and exchanges them, and
 *	  verify(), which builds one only to compare.
 *
 * An online rebuild creates, in a schema of its own (the shadow schema,
 * owned by the projection's owner, a member of the extension so that DROP
 * EXTENSION takes it along), an empty copy of each declared table: same
 * columns, defaults, constraints and indexes (CREATE TABLE ... LIKE ...
 * INCLUDING ALL).  The worker then applies every event to it from the first
 * one, as a unit of its own beside the live projection, with the shadow
 * schema first in the handler's search_path: a handler that names its
 * tables without a schema writes the shadow model.  (One that writes
 * anything else stops the rebuild: apply.c checks the locks it took.)  The
 * shadow's checkpoint is in the catalog, committed with its writes, so a
 * crash only makes the worker go on where it stopped.
 *
 * When the shadow model has caught up, it is analyzed, and then one
 * transaction exchanges it with the live one:
 *
 *	1. the projection's applier locks (no batch of either model runs), and
 *	   for an inline projection a lock that makes appends wait;
 *	2. the last events are applied to the shadow model;
 *	3. ACCESS EXCLUSIVE locks on the live tables, waiting at most
 *	   projections.exchange_timeout (else the worker tries again later:
 *	   a longer wait would queue every reader behind it);
 *	4. for each table, the storage of the live table and of its shadow are
 *	   exchanged in pg_class: heap, TOAST table (by link) and each index
 *	   (matched by definition), with their statistics.  The live tables keep
 *	   their OIDs, so views, grants, policies, triggers, comments,
 *	   publications and foreign keys stay attached;
 *	5. the shadow schema, which now holds the old storage, is dropped, and
 *	   the projection's checkpoint becomes the shadow's.
 *
 * Only catalog rows change under the exclusive lock: its duration does not
 * grow with the size of the model.  Readers see the old model until the
 * transaction commits, and the new one after.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/heap.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/tablecmds.h"
#include "commands/tablespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "settings.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "apply.h"
#include "catalog.h"
#include "compat.h"
#include "handler.h"
#include "keys.h"
#include "rebuild.h"
#include "registry.h"
#include "shmem.h"

static ProjStatement next_schema_stmt = {
	"SELECT 'projections_build_' || nextval('projections.build_seq')", 0
};

static ProjStatement live_frontier_stmt = {
	"SELECT p.checkpoint_key, p.checkpoint_position, p.inline_active"
	" FROM projections.projection p WHERE p.name = $1",
	1, {TEXTOID}
};

/* a table and its schema-qualified, quoted name */
static char *
QualifiedName(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * Check a declared table: an ordinary, permanent table, owned by owner.
 */
static void
CheckTable(Oid relid, Oid owner)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u does not exist", relid)));
	form = (Form_pg_class) GETSTRUCT(tup);
	if (form->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an ordinary table", NameStr(form->relname)),
				 errdetail("A projection's read model is made of ordinary tables (not partitioned "
						   "tables, views or foreign tables).")));
	if (form->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("\"%s\" is a temporary table", NameStr(form->relname)),
				 errdetail("A projection outlives the session that registers it.")));
	if (!ProjRelationOwnerCheck(relid, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" must own table %s to declare it as a read-model table",
						GetUserNameFromId(owner, false), NameStr(form->relname))));
	if (form->relnamespace == ProjExtGet(false)->schema_oid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("\"%s\" belongs to the projections extension", NameStr(form->relname))));
	ReleaseSysCache(tup);
}

/*
 * The tables argument of register() and set_tables(): every table checked,
 * no name twice (the shadow model holds them by name), as an oid[].
 */
Datum
ProjCheckTables(Datum tables, Oid owner)
{
	ArrayType  *arr = DatumGetArrayTypeP(tables);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			j;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tables must be a one-dimensional array")));
	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tables must not be empty"),
				 errhint("Pass NULL to declare no tables.")));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("tables must not contain nulls")));
		CheckTable(DatumGetObjectId(elems[i]), owner);
		for (j = 0; j < i; j++)
		{
			if (elems[j] == elems[i])
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("table %s is given twice",
								get_rel_name(DatumGetObjectId(elems[i])))));
			if (strcmp(get_rel_name(DatumGetObjectId(elems[j])),
					   get_rel_name(DatumGetObjectId(elems[i]))) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("two tables are named \"%s\"",
								get_rel_name(DatumGetObjectId(elems[i]))),
						 errdetail("A rebuilt model holds its tables in one schema, by name.")));
		}
	}
	return PointerGetDatum(construct_array(elems, n, OIDOID, sizeof(Oid), true,
										   TYPALIGN_INT));
}

/*
 * A plain rebuild of a projection without a reset function empties its
 * declared tables, as the projection's owner.
 */
void
ProjTruncateTables(ProjectionDef *def)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "TRUNCATE ");
	for (i = 0; i < def->ntables; i++)
	{
		CheckTable(def->tables[i], def->owner);
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "", QualifiedName(def->tables[i]));
	}
	SPI_connect();
	ProjRunDynamic(def->owner, sql.data, 0, NULL, NULL, NULL, 0);
	SPI_finish();
	CommandCounterIncrement();
}

/*
 * Whether the handler sets its own search_path (CREATE FUNCTION ... SET
 * search_path): then it could not be pointed at another model.
 */
static bool
HandlerSetsSearchPath(Oid func)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(func));
	bool		isnull;
	Datum		config;
	bool		found = false;

	if (!HeapTupleIsValid(tup))
		return false;
	config = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proconfig, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(config), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n && !found; i++)
			found = !nulls[i] &&
				pg_strncasecmp(TextDatumGetCString(elems[i]), "search_path=", 12) == 0;
	}
	ReleaseSysCache(tup);
	return found;
}

/* Whether a table has dropped columns, or takes part in inheritance. */
static void
CheckRebuildableTable(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
		if (TupleDescAttr(desc, i)->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table %s has dropped columns", RelationGetRelationName(rel)),
					 errdetail("An online rebuild exchanges the tables' storage, which needs "
							   "the new model's rows in exactly the old table's layout."),
					 errhint("Use a plain rebuild, or recreate the table without them.")));
	if (rel->rd_rel->relhassubclass || rel->rd_rel->relispartition ||
		has_superclass(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table %s takes part in inheritance", RelationGetRelationName(rel)),
				 errhint("Use a plain rebuild.")));
	table_close(rel, AccessShareLock);
}

/* Whether a table has foreign keys of its own (pointing at other tables). */
static bool
TableHasForeignKeys(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	bool		has = RelationGetFKeyList(rel) != NIL;

	table_close(rel, AccessShareLock);
	return has;
}

/*
 * Check that a projection's model can be built beside the live one: tables
 * declared, rebuildable, and a handler that reaches them by search_path.
 */
static void
CheckOnline(ProjectionDef *def, const char *what)
{
	ProjCallProblem problem;
	Oid			handler;
	int			i;

	if (def->ntables == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("projection \"%s\" has no declared tables", def->name),
				 errdetail("%s builds a new model beside the live one, which needs to know its tables.",
						   what),
				 errhint("Declare them: SELECT projections.set_tables(%s, ARRAY['my_table']::regclass[]).",
						 quote_literal_cstr(def->name))));
	if (!ProjCheckCallable(def->name, "handler", def->handler, def->owner, &handler,
						   &problem))
		ProjRaiseProblem(&problem);
	if (HandlerSetsSearchPath(handler))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("handler %s of projection \"%s\" sets its own search_path",
						def->handler, def->name),
				 errdetail("%s runs the handler with the new model's schema first in its "
						   "search_path; a handler with SET search_path would write the live model.",
						   what),
				 errhint("Remove the SET clause (ALTER FUNCTION ... RESET search_path), name the "
						 "tables without their schema, and register the projection with a "
						 "search_path that finds them; or use a plain rebuild.")));
	for (i = 0; i < def->ntables; i++)
	{
		CheckTable(def->tables[i], def->owner);
		CheckRebuildableTable(def->tables[i]);
	}
}

/* Make an object a member of the extension (DROP EXTENSION drops it). */
static void
AddToExtension(Oid classid, Oid objid)
{
	ObjectAddress object;
	ObjectAddress extension;

	ObjectAddressSet(object, classid, objid);
	ObjectAddressSet(extension, ExtensionRelationId, ProjExtGet(false)->extension_oid);
	recordDependencyOn(&object, &extension, DEPENDENCY_EXTENSION);
}

/* The reloptions of a table, as a WITH clause ("" if none). */
static char *
ReloptionsClause(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		isnull;
	Datum		options;
	StringInfoData buf;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	initStringInfo(&buf);
	options = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(options), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			char	   *opt = TextDatumGetCString(elems[i]);
			char	   *eq = strchr(opt, '=');

			if (eq == NULL)
				continue;
			*eq = '\0';
			appendStringInfo(&buf, "%s%s = %s", buf.len == 0 ? " WITH (" : ", ",
							 quote_identifier(opt), quote_literal_cstr(eq + 1));
		}
		if (buf.len > 0)
			appendStringInfoChar(&buf, ')');
	}
	ReleaseSysCache(tup);
	return buf.data;
}

/*
 * Create a schema with an empty copy of each of the projection's tables,
 * owned by the projection's owner, members of the extension.  Returns the
 * schema's name, and the new tables' OIDs in *relids (in the order of
 * def->tables) when relids is not NULL.
 */
static char *
CreateShadow(ProjectionDef *def, Oid **relids)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *schema;
	Oid			nsp;
	int			i;

	SPI_connect();
	ProjRun(&next_schema_stmt, NULL, NULL, false, 1);
	schema = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1));
	ProjRunDynamic(InvalidOid,
				   psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(schema),
							quote_identifier(GetUserNameFromId(def->owner, false))),
				   0, NULL, NULL, NULL, 0);
	for (i = 0; i < def->ntables; i++)
	{
		Oid			relid = def->tables[i];
		Oid			tablespace = get_rel_tablespace(relid);

		ProjRunDynamic(def->owner,
					   psprintf("CREATE %sTABLE %s.%s (LIKE %s INCLUDING ALL)%s%s",
								get_rel_persistence(relid) == RELPERSISTENCE_UNLOGGED ?
								"UNLOGGED " : "",
								quote_identifier(schema),
								quote_identifier(get_rel_name(relid)),
								QualifiedName(relid), ReloptionsClause(relid),
								OidIsValid(tablespace) ?
								psprintf(" TABLESPACE %s",
										 quote_identifier(get_tablespace_name(tablespace))) :
								""),
					   0, NULL, NULL, NULL, 0);
	}
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	CommandCounterIncrement();

	nsp = get_namespace_oid(schema, false);
	AddToExtension(NamespaceRelationId, nsp);
	if (relids != NULL)
		*relids = palloc(sizeof(Oid) * Max(def->ntables, 1));
	for (i = 0; i < def->ntables; i++)
	{
		Oid			relid = get_relname_relid(get_rel_name(def->tables[i]), nsp);

		AddToExtension(RelationRelationId, relid);
		if (relids != NULL)
			(*relids)[i] = relid;
	}
	CommandCounterIncrement();
	return schema;
}

/*
 * Whether relid is still a table this extension created for a new model in
 * schema nsp, for owner: the schema is the owner's, so its handler could
 * have renamed the table, or put (or, before PostgreSQL 16, turned)
 * something else in its place.  Only the extension makes a member of
 * itself.
 */
static bool
IsShadowTable(Oid relid, Oid nsp, Oid owner)
{
	HeapTuple	tup;
	bool		ok;

	if (!OidIsValid(relid))
		return false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	ok = ((Form_pg_class) GETSTRUCT(tup))->relkind == RELKIND_RELATION &&
		((Form_pg_class) GETSTRUCT(tup))->relnamespace == nsp &&
		((Form_pg_class) GETSTRUCT(tup))->relowner == owner;
	ReleaseSysCache(tup);
	return ok &&
		getExtensionOfObject(RelationRelationId, relid) == ProjExtGet(false)->extension_oid;
}

/* The shadow table of a live table in schema nsp, or InvalidOid. */
static Oid
ShadowTable(Oid live_relid, Oid nsp, Oid owner)
{
	Oid			relid;

	if (!OidIsValid(nsp))
		return InvalidOid;
	relid = get_relname_relid(get_rel_name(live_relid), nsp);
	return IsShadowTable(relid, nsp, owner) ? relid : InvalidOid;
}

/* Drop a shadow schema and everything in it (it is the extension's). */
static void
DropShadow(const char *schema)
{
	Oid			nsp = get_namespace_oid(schema, true);
	ObjectAddress object;

	if (!OidIsValid(nsp))
		return;
	ObjectAddressSet(object, NamespaceRelationId, nsp);
	performDeletion(&object, DROP_CASCADE,
					PERFORM_DELETION_INTERNAL | PERFORM_DELETION_QUIETLY |
					PERFORM_DELETION_SKIP_EXTENSIONS);
	CommandCounterIncrement();
}

/*
 * projections.rebuild(name, online => true): create the shadow model and
 * note the rebuild in the catalog.  The caller holds the applier lock.
 */
void
ProjRebuildStartOnline(ProjectionDef *def)
{
	char	   *schema;
	int			i;

	if (def->build_schema != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("projection \"%s\" is already being rebuilt online", def->name),
				 errhint("Watch rebuild_position in projections.status, or call "
						 "projections.cancel_rebuild(%s).", quote_literal_cstr(def->name))));
	CheckOnline(def, "An online rebuild");
	for (i = 0; i < def->ntables; i++)
		if (TableHasForeignKeys(def->tables[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table %s has foreign keys", get_rel_name(def->tables[i])),
					 errdetail("An online rebuild exchanges the tables' storage: the new model's "
							   "rows would not be checked against the table's foreign keys."),
					 errhint("Use a plain rebuild, or drop the foreign keys.")));
	(void) ProjCatalogLock(def->name, PROJ_TARGET_BUILD, true);
	schema = CreateShadow(def, NULL);
	ProjCatalogStartBuild(def->name, schema);
	ProjNoteCatalogChange();
}

/*
 * Drop an online rebuild's shadow model; the live one is untouched.  Waits
 * for a batch of the shadow model in progress.
 */
void
ProjRebuildCancel(ProjectionDef *def)
{
	if (def->build_schema == NULL)
		return;
	(void) ProjCatalogLock(def->name, PROJ_TARGET_BUILD, true);
	DropShadow(def->build_schema);
	ProjCatalogEndBuild(def->name);
	ProjNoteCatalogChange();
	def->build_schema = NULL;
}

/*
 * ANALYZE the shadow tables, as their owner, so the exchanged tables carry
 * statistics.  (A table that is no longer the extension's is left alone:
 * the exchange will refuse it.)
 */
static void
AnalyzeShadow(ProjectionDef *def)
{
	Oid			nsp = get_namespace_oid(def->build_schema, true);
	int			i;

	SPI_connect();
	for (i = 0; i < def->ntables; i++)
	{
		Oid			relid = ShadowTable(def->tables[i], nsp, def->owner);

		if (OidIsValid(relid))
			ProjRunDynamic(def->owner, psprintf("ANALYZE %s", QualifiedName(relid)),
						   0, NULL, NULL, NULL, 0);
	}
	SPI_finish();
}

/* ---- the exchange ---- */

/* Swap two relations' storage (and what describes it) in pg_class. */
static void
SwapStorage(Relation pg_class, Oid r1, Oid r2, bool toast_links)
{
	HeapTuple	t1 = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(r1));
	HeapTuple	t2 = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(r2));
	Form_pg_class f1;
	Form_pg_class f2;

	if (!HeapTupleIsValid(t1) || !HeapTupleIsValid(t2))
		elog(ERROR, "cache lookup failed for relation %u or %u", r1, r2);
	f1 = (Form_pg_class) GETSTRUCT(t1);
	f2 = (Form_pg_class) GETSTRUCT(t2);

#define SWAP(field, type) do { type tmp = f1->field; f1->field = f2->field; f2->field = tmp; } while (0)
	SWAP(relfilenode, Oid);
	SWAP(reltablespace, Oid);
	SWAP(relpages, int32);
	SWAP(reltuples, float4);
	SWAP(relallvisible, int32);
	SWAP(relfrozenxid, TransactionId);
	SWAP(relminmxid, MultiXactId);
	if (toast_links)
		SWAP(reltoastrelid, Oid);
#undef SWAP

	CatalogTupleUpdate(pg_class, &t1->t_self, t1);
	CatalogTupleUpdate(pg_class, &t2->t_self, t2);
	heap_freetuple(t1);
	heap_freetuple(t2);
}

/* Give a relation's statistics (pg_statistic rows) to another relation. */
static void
MoveStatistics(Oid from, Oid to)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	RemoveStatistics(to, 0);
	rel = table_open(StatisticRelationId, RowExclusiveLock);
	ScanKeyInit(&key, Anum_pg_statistic_starelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(from));
	scan = systable_beginscan(rel, StatisticRelidAttnumInhIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		HeapTuple	copy = heap_copytuple(tup);

		((Form_pg_statistic) GETSTRUCT(copy))->starelid = to;
		CatalogTupleUpdate(rel, &copy->t_self, copy);
		heap_freetuple(copy);
	}
	systable_endscan(scan);
	table_close(rel, RowExclusiveLock);
}

/* A relation's access method and TOAST table, from pg_class. */
static void
ClassInfo(Oid relid, Oid *am, Oid *toast)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

	*am = *toast = InvalidOid;
	if (HeapTupleIsValid(tup))
	{
		*am = ((Form_pg_class) GETSTRUCT(tup))->relam;
		*toast = ((Form_pg_class) GETSTRUCT(tup))->reltoastrelid;
		ReleaseSysCache(tup);
	}
}

/* Whether two pg_index tuples have the same value in a vector column. */
static bool
SameVector(HeapTuple t1, HeapTuple t2, int attr, bool oids, int n)
{
	bool		null1;
	bool		null2;
	Datum		d1 = SysCacheGetAttr(INDEXRELID, t1, attr, &null1);
	Datum		d2 = SysCacheGetAttr(INDEXRELID, t2, attr, &null2);

	if (null1 || null2)
		return null1 == null2;
	if (oids)
		return memcmp(((oidvector *) DatumGetPointer(d1))->values,
					  ((oidvector *) DatumGetPointer(d2))->values, sizeof(Oid) * n) == 0;
	return memcmp(((int2vector *) DatumGetPointer(d1))->values,
				  ((int2vector *) DatumGetPointer(d2))->values, sizeof(int16) * n) == 0;
}

/*
 * Whether two stored expression trees are the same (equal() leaves out the
 * parse locations, which a copy made by LIKE does not keep).
 */
static bool
SameExpression(const char *e1, const char *e2)
{
	return equal(stringToNode(e1), stringToNode(e2));
}

/* Whether two pg_index tuples have the same expression tree in a column. */
static bool
SameTree(HeapTuple t1, HeapTuple t2, int attr)
{
	bool		null1;
	bool		null2;
	Datum		d1 = SysCacheGetAttr(INDEXRELID, t1, attr, &null1);
	Datum		d2 = SysCacheGetAttr(INDEXRELID, t2, attr, &null2);

	if (null1 || null2)
		return null1 == null2;
	return SameExpression(TextDatumGetCString(d1), TextDatumGetCString(d2));
}

/*
 * Whether two indexes have the same definition, on tables of one layout
 * (the same attribute numbers), and are both valid.
 */
static bool
SameIndex(Oid i1, Oid i2)
{
	HeapTuple	t1 = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(i1));
	HeapTuple	t2 = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(i2));
	Form_pg_index f1;
	Form_pg_index f2;
	Oid			am1;
	Oid			am2;
	Oid			toast;
	bool		same;

	if (!HeapTupleIsValid(t1) || !HeapTupleIsValid(t2))
		elog(ERROR, "cache lookup failed for index %u or %u", i1, i2);
	f1 = (Form_pg_index) GETSTRUCT(t1);
	f2 = (Form_pg_index) GETSTRUCT(t2);
	ClassInfo(i1, &am1, &toast);
	ClassInfo(i2, &am2, &toast);
	same = f1->indnatts == f2->indnatts && f1->indnkeyatts == f2->indnkeyatts &&
		f1->indisunique == f2->indisunique && f1->indisprimary == f2->indisprimary &&
		f1->indisexclusion == f2->indisexclusion &&
		f1->indimmediate == f2->indimmediate &&
		f1->indisvalid && f2->indisvalid && f1->indisready && f2->indisready &&
		am1 == am2 &&
		memcmp(f1->indkey.values, f2->indkey.values,
			   sizeof(int16) * f1->indnatts) == 0;
	same = same && ProjIndexNullsNotDistinct(f1) == ProjIndexNullsNotDistinct(f2);
	same = same &&
		SameVector(t1, t2, Anum_pg_index_indcollation, true, f1->indnkeyatts) &&
		SameVector(t1, t2, Anum_pg_index_indclass, true, f1->indnkeyatts) &&
		SameVector(t1, t2, Anum_pg_index_indoption, false, f1->indnkeyatts) &&
		SameTree(t1, t2, Anum_pg_index_indexprs) &&
		SameTree(t1, t2, Anum_pg_index_indpred);
	ReleaseSysCache(t1);
	ReleaseSysCache(t2);
	return same;
}

/*
 * Whether every enforced check constraint of a live table is enforced on
 * its shadow too (on one layout, the same expression is the same string):
 * the new model's rows were checked on their way in.
 */
static bool
ChecksCovered(TupleConstr *live, TupleConstr *shadow)
{
	int			i;
	int			j;

	if (live == NULL)
		return true;
	for (i = 0; i < live->num_check; i++)
	{
		bool		found = false;

		if (!ProjCheckEnforced(&live->check[i]))
			continue;
		for (j = 0; shadow != NULL && j < shadow->num_check && !found; j++)
			found = ProjCheckEnforced(&shadow->check[j]) &&
				SameExpression(live->check[i].ccbin, shadow->check[j].ccbin);
		if (!found)
			return false;
	}
	return true;
}

/*
 * Check that a shadow table has exactly the live table's layout (nobody
 * altered the live table during the rebuild) and pair their indexes.
 * Returns NULL when they do not match (the reason in *why).
 */
static List *
PairIndexes(Relation live, Relation shadow, char **why)
{
	TupleDesc	d1 = RelationGetDescr(live);
	TupleDesc	d2 = RelationGetDescr(shadow);
	List	   *live_indexes;
	List	   *shadow_indexes;
	List	   *pairs = NIL;
	ListCell   *lc;
	int			i;

	if (live->rd_rel->relkind != RELKIND_RELATION ||
		shadow->rd_rel->relkind != RELKIND_RELATION)
	{
		*why = "it or its new table is not an ordinary table";
		return NIL;
	}
	if (d1->natts != d2->natts ||
		live->rd_rel->relpersistence != shadow->rd_rel->relpersistence ||
		OidIsValid(live->rd_rel->reltoastrelid) != OidIsValid(shadow->rd_rel->reltoastrelid))
	{
		*why = "its columns or its persistence changed";
		return NIL;
	}
	for (i = 0; i < d1->natts; i++)
	{
		Form_pg_attribute a1 = TupleDescAttr(d1, i);
		Form_pg_attribute a2 = TupleDescAttr(d2, i);

		if (a1->attisdropped || a2->attisdropped || a1->atttypid != a2->atttypid ||
			a1->atttypmod != a2->atttypmod || a1->attcollation != a2->attcollation ||
			a1->attgenerated != a2->attgenerated ||
			strcmp(NameStr(a1->attname), NameStr(a2->attname)) != 0)
		{
			*why = "its columns changed";
			return NIL;
		}
		if (a1->attnotnull && !a2->attnotnull)
		{
			*why = "its constraints changed";
			return NIL;
		}
	}
	if (live->rd_rel->relam != shadow->rd_rel->relam)
	{
		*why = "its access method changed";
		return NIL;
	}
	if (RelationGetFKeyList(live) != NIL)
	{
		*why = "it has foreign keys";
		return NIL;
	}
	if (!ChecksCovered(d1->constr, d2->constr))
	{
		*why = "its constraints changed";
		return NIL;
	}
	live_indexes = RelationGetIndexList(live);
	shadow_indexes = RelationGetIndexList(shadow);
	if (list_length(live_indexes) != list_length(shadow_indexes))
	{
		*why = "its indexes changed";
		return NIL;
	}
	foreach(lc, live_indexes)
	{
		Oid			li = lfirst_oid(lc);
		Oid			match = InvalidOid;
		ListCell   *lc2;

		foreach(lc2, shadow_indexes)
		{
			Oid			si = lfirst_oid(lc2);

			if (OidIsValid(si) && SameIndex(li, si))
			{
				match = si;
				lfirst_oid(lc2) = InvalidOid;
				break;
			}
		}
		if (!OidIsValid(match))
		{
			*why = "its indexes changed";
			return NIL;
		}
		pairs = lappend_oid(pairs, li);
		pairs = lappend_oid(pairs, match);
	}
	if (pairs == NIL)
		pairs = lappend_oid(pairs, InvalidOid);		/* (no indexes: not a mismatch) */
	return pairs;
}

/* The identity sequences of a table's columns (attnum order). */
static void
CatchUpIdentity(Relation live, Relation shadow, Oid owner)
{
	TupleDesc	desc = RelationGetDescr(live);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			live_seq;
		Oid			shadow_seq;

		if (!att->attidentity)
			continue;
		live_seq = ProjIdentitySequence(live, att->attnum);
		shadow_seq = ProjIdentitySequence(shadow, att->attnum);
		/* values the new model used must not be handed out again */
		SPI_connect();
		ProjRunDynamic(owner,
					   psprintf("SELECT setval(%u::regclass, greatest("
								"(SELECT s.last_value FROM %s s), (SELECT s.last_value FROM %s s)))",
								live_seq, QualifiedName(live_seq), QualifiedName(shadow_seq)),
					   0, NULL, NULL, NULL, 0);
		SPI_finish();
	}
}

/* Exchange one live table with its shadow (both locked exclusively). */
static void
ExchangeTable(Oid live_relid, Oid shadow_relid, List *pairs, Oid owner)
{
	Relation	pg_class = table_open(RelationRelationId, RowExclusiveLock);
	Relation	live = table_open(live_relid, NoLock);
	Relation	shadow = table_open(shadow_relid, NoLock);
	Oid			live_toast = live->rd_rel->reltoastrelid;
	Oid			shadow_toast = shadow->rd_rel->reltoastrelid;
	ListCell   *lc;

	CatchUpIdentity(live, shadow, owner);

	/* the heaps, and the TOAST tables by link (their values name them) */
	SwapStorage(pg_class, live_relid, shadow_relid, true);
	if (OidIsValid(live_toast))
	{
		changeDependencyFor(RelationRelationId, live_toast,
							RelationRelationId, live_relid, shadow_relid);
		changeDependencyFor(RelationRelationId, shadow_toast,
							RelationRelationId, shadow_relid, live_relid);
	}
	MoveStatistics(shadow_relid, live_relid);

	/* each index with its twin */
	for (lc = list_head(pairs); lc != NULL && OidIsValid(lfirst_oid(lc));
		 lc = lnext(pairs, lnext(pairs, lc)))
	{
		Oid			li = lfirst_oid(lc);
		Oid			si = lfirst_oid(lnext(pairs, lc));

		SwapStorage(pg_class, li, si, false);
		MoveStatistics(si, li);
	}

	table_close(shadow, NoLock);
	table_close(live, NoLock);
	table_close(pg_class, RowExclusiveLock);
	CommandCounterIncrement();
}

/* TOAST tables are named after their table: name them after their new one. */
static void
RenameToast(Oid relid)
{
	Oid			am;
	Oid			toast;
	char		name[NAMEDATALEN];
	List	   *indexes;
	Relation	rel;

	ClassInfo(relid, &am, &toast);
	if (!OidIsValid(toast))
		return;
	snprintf(name, sizeof(name), "pg_toast_%u", relid);
	RenameRelationInternal(toast, name, true, false);
	rel = table_open(toast, NoLock);
	indexes = RelationGetIndexList(rel);
	table_close(rel, NoLock);
	if (indexes != NIL)
	{
		snprintf(name, sizeof(name), "pg_toast_%u_index", relid);
		RenameRelationInternal(linitial_oid(indexes), name, true, true);
	}
	CommandCounterIncrement();
}

/*
 * The exchange: with the applier locks held, apply the last events to the
 * shadow model, lock the live tables (waiting at most
 * projections.exchange_timeout, or without bound with wait), exchange the
 * storage, drop the shadow schema and move the checkpoint.  Returns false
 * when a lock was not granted in time (nothing exchanged; the caller tries
 * again later).
 */
static bool
Exchange(ProjectionDef *def, bool wait)
{
	const ProjExtInfo *ext = ProjExtGet(false);
	ProjApplyResult result;
	Oid			nsp;
	Oid		   *live;
	Oid		   *shadow;
	List	  **pairs;
	TimestampTz started;
	TimestampTz locked;
	int			n = def->ntables;
	int			i;
	int64		horizon;
	bool		inline_model = def->inline_active;

	/* an inline model moves with every append: hold them off */
	if (inline_model &&
		!ProjLockTimeout(ext->events_relid, ShareRowExclusiveLock,
						 wait ? INT_MAX : proj_exchange_timeout_ms))
		return false;

	/* the last events */
	started = GetCurrentTimestamp();
	horizon = inline_model ? PG_INT64_MAX : ProjSafeKey(GetLatestSnapshot());
	ProjApplyAll(def, PROJ_TARGET_BUILD, def->build_schema, horizon, true, &result);
	if (result.failed)
	{
		ProjRebuildCancel(def);
		return true;
	}

	/* the live tables, then their shadows, in OID order */
	nsp = get_namespace_oid(def->build_schema, true);
	live = palloc(sizeof(Oid) * n);
	shadow = palloc(sizeof(Oid) * n);
	pairs = palloc(sizeof(List *) * n);
	for (i = 0; i < n; i++)
		live[i] = def->tables[i];
	qsort(live, n, sizeof(Oid), oid_cmp);
	for (i = 0; i < n; i++)
	{
		if (!ProjLockTimeout(live[i], AccessExclusiveLock,
							 wait ? INT_MAX : proj_exchange_timeout_ms))
			return false;
	}
	locked = GetCurrentTimestamp();
	for (i = 0; i < n; i++)
	{
		Relation	l;
		Relation	s;
		char	   *why = NULL;

		shadow[i] = ShadowTable(live[i], nsp, def->owner);
		if (!OidIsValid(shadow[i]))
			why = "its new table is missing or was replaced";
		else
		{
			l = table_open(live[i], NoLock);
			s = table_open(shadow[i], AccessExclusiveLock);
			if (!ProjRelationOwnerCheck(live[i], def->owner))
				why = "it changed owner";
			else
				pairs[i] = PairIndexes(l, s, &why);
			table_close(s, NoLock);
			table_close(l, NoLock);
		}
		if (why != NULL)
		{
			ProjCatalogRecordError(def->name,
								   psprintf("online rebuild cancelled: table %s cannot be exchanged: %s",
											get_rel_name(live[i]), why),
								   ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, 0, false);
			ereport(LOG,
					(errmsg("online rebuild of projection \"%s\" cancelled: table %s cannot be exchanged: %s",
							def->name, get_rel_name(live[i]), why),
					 errhint("Start the rebuild again.")));
			ProjRebuildCancel(def);
			return true;
		}
	}

	for (i = 0; i < n; i++)
		ExchangeTable(live[i], shadow[i], pairs[i], def->owner);
	DropShadow(def->build_schema);
	for (i = 0; i < n; i++)
		RenameToast(live[i]);
	ProjCatalogCompleteBuild(def->name);
	ProjNoteCatalogChange();
	ProjNoteProgress();
	ereport(LOG,
			(errmsg("projections: exchanged the read model of projection \"%s\" "
					"(%d table%s); the tables were locked for %ld ms, the exchange took %ld ms",
					def->name, n, n == 1 ? "" : "s",
					(long) ((GetCurrentTimestamp() - locked) / 1000),
					(long) ((GetCurrentTimestamp() - started) / 1000))));
	def->build_schema = NULL;
	return true;
}

/*
 * One step of an online rebuild: a batch of the shadow model (or, with
 * wait, all of it), then, once it has caught up, its statistics, then the
 * exchange.  Returns whether there is more to do; *locked_out says that
 * nothing was done because another process held a lock of the projection.
 * The caller (the worker, or run() with wait) runs it in a transaction
 * with an active snapshot.
 */
bool
ProjRebuildStep(const char *name, bool wait, int64 *applied, bool *locked_out)
{
	ProjectionDef def;
	ProjApplyResult result;

	*applied = 0;
	*locked_out = false;
	if (!ProjCatalogLoad(name, &def) || def.build_schema == NULL)
		return false;

	if (!def.build_analyzed)
	{
		ProjApply(name, PROJ_TARGET_BUILD, wait ? PROJ_CALLER_RUN : PROJ_CALLER_WORKER,
				  0, &result);
		*applied = result.applied;
		if (result.locked_out)
		{
			*locked_out = true;
			return false;
		}
		if (!ProjCatalogLoad(name, &def) || def.build_schema == NULL)
			return false;
		if (result.failed)
		{
			ProjRebuildCancel(&def);
			return false;
		}
		if (!result.drained)
			return true;
		AnalyzeShadow(&def);
		ProjCatalogSetBuildAnalyzed(name);
		return true;
	}

	/* the exchange: no batch of either model may run meanwhile */
	if (!ProjCatalogLock(name, PROJ_TARGET_LIVE, wait) ||
		!ProjCatalogLock(name, PROJ_TARGET_BUILD, wait))
	{
		*locked_out = true;
		return false;
	}
	if (!ProjCatalogLoad(name, &def) || def.build_schema == NULL)
		return false;
	if (!Exchange(&def, wait))
	{
		if (wait)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not lock the tables of projection \"%s\" for the exchange", name)));
		ereport(LOG,
				(errmsg("projections: exchange of projection \"%s\" postponed: its locks were "
						"not granted within projections.exchange_timeout (%d ms)",
						name, proj_exchange_timeout_ms),
				 errdetail("The worker tries again later; meanwhile readers that queued "
						   "behind the exchange waited up to that long.")));
		return false;
	}
	return false;
}

/* ---- verify ---- */

/*
 * The columns of a live table that verify() compares (all but the dropped
 * and the ignored ones), as a select list; types without equality are
 * compared as text.
 */
static char *
CompareColumns(Oid relid, List *ignore, List **used)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		TypeCacheEntry *type;
		ListCell   *lc;
		bool		skip = false;

		if (att->attisdropped)
			continue;
		foreach(lc, ignore)
			if (strcmp((char *) lfirst(lc), NameStr(att->attname)) == 0)
			{
				skip = true;
				*used = list_append_unique_ptr(*used, lfirst(lc));
			}
		if (skip)
			continue;
		type = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR | TYPECACHE_CMP_PROC);
		appendStringInfo(&buf, "%s%s%s", buf.len > 0 ? ", " : "",
						 quote_identifier(NameStr(att->attname)),
						 OidIsValid(type->eq_opr) && OidIsValid(type->cmp_proc) ?
						 "" : "::text");
	}
	table_close(rel, AccessShareLock);
	if (buf.len == 0)
		appendStringInfoString(&buf, "1");
	return buf.data;
}

/*
 * projections.verify(): in a subtransaction that is rolled back at the end
 * (so nothing is left and nothing changes), create a scratch model, build
 * it from the first event up to the live model's frontier as of one
 * snapshot, and compare the two per table, as multisets.
 */
void
ProjVerify(ProjectionDef *def, List *ignore, Tuplestorestate *result,
		   TupleDesc desc)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Snapshot	snapshot;
	volatile int64 ck = 0;
	volatile int64 cpos = 0;
	volatile bool inline_all = false;
	Datum		name = CStringGetTextDatum(def->name);
	int64	   *missing = palloc0(sizeof(int64) * def->ntables);
	int64	   *extra = palloc0(sizeof(int64) * def->ntables);
	List	   *used = NIL;
	char	  **cols = palloc(sizeof(char *) * def->ntables);
	ListCell   *lc;
	int			i;

	CheckOnline(def, "verify()");

	/* what is compared, and whether every ignored column exists */
	for (i = 0; i < def->ntables; i++)
		cols[i] = CompareColumns(def->tables[i], ignore, &used);
	foreach(lc, ignore)
		if (!list_member_ptr(used, lfirst(lc)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of ignore_columns is in none of the tables of projection \"%s\"",
							(char *) lfirst(lc), def->name)));

	/* the live model and its frontier, as of one snapshot */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	SPI_connect();
	ProjRunSnapshot(&live_frontier_stmt, &name, NULL, snapshot, 1);
	if (SPI_processed > 0)
	{
		bool		isnull;

		ck = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		cpos = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		inline_all = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	}
	SPI_finish();
	MemoryContextSwitchTo(cxt);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Oid		   *scratch;
		char	   *schema = CreateShadow(def, &scratch);
		Oid			nsp = get_namespace_oid(schema, false);

		(void) ProjApplyScratch(def, schema, snapshot, inline_all, ck, cpos);
		CommandCounterIncrement();

		/*
		 * Compare as the owner: the scratch schema is the owner's, and its
		 * handler has just run there.
		 */
		SPI_connect();
		for (i = 0; i < def->ntables; i++)
		{
			char	   *live = QualifiedName(def->tables[i]);
			char	   *fresh;
			bool		isnull;

			if (!IsShadowTable(scratch[i], nsp, def->owner))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("handler of projection \"%s\" replaced the scratch copy of table %s",
								def->name, get_rel_name(def->tables[i])),
						 errdetail("verify() compares the live model with the one the handler "
								   "builds in a schema of its own; the handler must only write rows.")));
			fresh = QualifiedName(scratch[i]);
			ProjRunDynamicSnapshot(def->owner,
								   psprintf("SELECT (SELECT count(*) FROM (SELECT %s FROM %s"
											" EXCEPT ALL SELECT %s FROM %s) d),"
											" (SELECT count(*) FROM (SELECT %s FROM %s"
											" EXCEPT ALL SELECT %s FROM %s) d)",
											cols[i], fresh, cols[i], live, cols[i], live,
											cols[i], fresh),
								   snapshot, 1);
			missing[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			extra[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		}
		SPI_finish();
		MemoryContextSwitchTo(cxt);

		/* nothing stays: the scratch model goes with the subtransaction */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		UnregisterSnapshot(snapshot);
		ReThrowError(edata);
	}
	PG_END_TRY();
	UnregisterSnapshot(snapshot);

	for (i = 0; i < def->ntables; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = ObjectIdGetDatum(def->tables[i]);
		values[1] = Int64GetDatum(missing[i]);
		values[2] = Int64GetDatum(extra[i]);
		tuplestore_putvalues(result, desc, values, nulls);
	}
}
