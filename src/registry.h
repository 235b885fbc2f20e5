/*-------------------------------------------------------------------------
 *
 * registry.h
 *	  The extension's identity in this database, and the one way its own
 *	  statements run: as the extension's owner, under a pinned search_path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_REGISTRY_H
#define PROJECTIONS_REGISTRY_H

#include "executor/spi.h"
#include "utils/snapshot.h"

/* the extension's objects in this database */
typedef struct ProjExtInfo
{
	Oid			extension_oid;
	Oid			schema_oid;
	Oid			owner;			/* the extension's owner */
	Oid			events_relid;
	Oid			events_type;	/* row type of projections.events */
	Oid			events_array_type;	/* projections.events[] */
	Oid			catalog_relid;	/* projections.projection */
	Oid			offset_relid;	/* projections.key_offset */
	Oid			sequence_relid; /* projections.events_global_position_seq */
	Oid			streams_relid;	/* projections.streams */
	bool		current;		/* installed at PROJ_SQL_VERSION */
} ProjExtInfo;

extern const ProjExtInfo *ProjExtGet(bool missing_ok);
extern const ProjExtInfo *ProjExtPeek(void);
extern bool ProjLockExtension(void);
extern void ProjRequireCurrentVersion(void);

#define PROJ_STMT_MAX_ARGS 12

/*
 * One of the extension's statements: its text, its parameter types, and its
 * plan, prepared on first use and kept for the life of the process.  Each
 * file declares the statements it runs next to where it runs them.
 */
typedef struct ProjStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[PROJ_STMT_MAX_ARGS];
	SPIPlanPtr	plan;
} ProjStatement;

/*
 * Execute a statement as the extension's owner; the caller is connected to
 * SPI and finds the result in SPI_tuptable / SPI_processed.  With latest,
 * the statement sees every committed change (and the transaction's own)
 * whatever the isolation level.  CurrentMemoryContext is the caller's again
 * on return.
 */
extern int	ProjRun(ProjStatement *stmt, Datum *values, const char *nulls,
					bool latest, long count);
extern int	ProjRunSnapshot(ProjStatement *stmt, Datum *values, const char *nulls,
							Snapshot snapshot, long count);

/*
 * A statement built at run time (names quoted with quote_identifier, values
 * as parameters), run once the same way, as role (InvalidOid: the
 * extension's owner) in a security-restricted operation.
 */
extern int	ProjRunDynamic(Oid role, const char *sql, int nargs, Oid *argtypes,
						   Datum *values, const char *nulls, long count);

extern int	ProjRunDynamicSnapshot(Oid role, const char *sql, Snapshot snapshot,
								   long count);

/* lock a relation, waiting at most timeout_ms; false on timeout */
extern bool ProjLockTimeout(Oid relid, int lockmode, int timeout_ms);

/* search_path = pg_catalog, pg_temp until ProjUnpinSearchPath */
extern int	ProjPinSearchPath(void);
extern void ProjUnpinSearchPath(int level);

/* the catalog guard's exemption: the extension's own writes */
extern bool ProjInternalWriteInProgress(void);
extern int	ProjSuspendInternalWrites(void);
extern void ProjResumeInternalWrites(int saved);

extern void ProjRegistryInit(void);

#endif							/* PROJECTIONS_REGISTRY_H */
