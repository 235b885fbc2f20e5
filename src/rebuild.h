/*-------------------------------------------------------------------------
 *
 * rebuild.h
 *	  Read-model tables: rebuilding a projection's model beside the live
 *	  one and exchanging them (online rebuild), and verify().
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_REBUILD_H
#define PROJECTIONS_REBUILD_H

#include "access/tupdesc.h"
#include "utils/tuplestore.h"

#include "catalog.h"

extern Datum ProjCheckTables(Datum tables, Oid owner);
extern void ProjTruncateTables(ProjectionDef *def);
extern void ProjRebuildStartOnline(ProjectionDef *def);
extern void ProjRebuildCancel(ProjectionDef *def);
extern bool ProjRebuildStep(const char *name, bool wait, int64 *applied, bool *locked_out);
extern void ProjVerify(ProjectionDef *def, List *ignore_columns,
					   Tuplestorestate *result, TupleDesc desc);

#endif							/* PROJECTIONS_REBUILD_H */
