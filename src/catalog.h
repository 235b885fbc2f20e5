/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The catalog of projections (projections.projection and
 *	  projections.failed_event): reading its rows, locking a projection,
 *	  and every write to it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_CATALOG_H
#define PROJECTIONS_CATALOG_H

#include "nodes/pg_list.h"

/* a projection's state, as the catalog's state column spells it */
typedef enum ProjState
{
	PROJ_STATE_ACTIVE,
	PROJ_STATE_PAUSED,
	PROJ_STATE_FAILED
} ProjState;

extern const char *ProjStateName(ProjState state);

/*
 * Where applying stands: every event at or below (key, pos) in
 * (ordering_key, global_position) order, and every event at or below
 * skip_position, has been applied; position is the last one applied.
 */
typedef struct ProjFrontier
{
	int64		key;
	int64		pos;
	int64		skip_position;
	int64		position;
} ProjFrontier;

/* what a projection's row holds, as the rest of the extension needs it */
typedef struct ProjectionDef
{
	char	   *name;
	char	   *handler;		/* schema-qualified signature */
	char	   *reset;			/* likewise, or NULL */
	Datum		event_types;	/* text[], valid when has_filter */
	bool		has_filter;
	bool		is_inline;		/* mode = 'inline' */
	bool		skip_on_error;	/* on_error = 'skip' */
	bool		batch;			/* the handler takes projections.events[] */
	Oid			owner;
	char	   *search_path;	/* captured at registration */
	ProjState	state;
	bool		rebuilding;
	bool		inline_active;
	ProjFrontier live;
	int			ntables;		/* declared read-model tables */
	Oid		   *tables;
	char	   *build_schema;	/* an online rebuild's shadow model, or NULL */
	ProjFrontier build;
	bool		build_analyzed;
} ProjectionDef;

/* which model an applier works on */
typedef enum ProjTarget
{
	PROJ_TARGET_LIVE,			/* the read model */
	PROJ_TARGET_BUILD			/* the shadow model of an online rebuild */
} ProjTarget;

/* what one apply call did, saved with its checkpoint */
typedef struct ProjProgress
{
	ProjFrontier frontier;
	int64		applied;
	int64		skipped;
	bool		rebuilding;		/* still replaying after a rebuild */
	bool		inline_active;	/* the projection went inline */
} ProjProgress;

/* an event that was skipped under on_error = skip */
typedef struct ProjSkippedEvent
{
	int64		position;
	char	   *stream_id;
	int32		stream_version;
	char	   *event_type;
	char	   *message;
	int			sqlerrcode;
} ProjSkippedEvent;

/* rows read; allocated in the caller's memory context */
extern bool ProjCatalogLoad(const char *name, ProjectionDef *def);
extern ProjectionDef *ProjCatalogLoadOrError(const char *name);
extern List *ProjCatalogListRunnable(bool *builds);
extern List *ProjCatalogListInline(void);
extern List *ProjCatalogOwnedBy(Oid role);
extern void ProjCatalogCheckOwner(const ProjectionDef *def);
extern bool ProjCatalogLock(const char *name, ProjTarget target, bool wait);

/* writes: the only ones */
extern bool ProjCatalogInsert(const char *name, const char *handler,
							  const char *reset, Datum event_types,
							  bool has_filter, bool is_inline, bool skip,
							  bool batch, Oid owner, const char *search_path,
							  Datum tables, bool has_tables);
extern void ProjCatalogDelete(const char *name);
extern void ProjCatalogSetState(const char *name, ProjState state);
extern void ProjCatalogSetMode(const char *name, bool is_inline);
extern void ProjCatalogSetTables(const char *name, Datum tables, bool has_tables);
extern void ProjCatalogSetOwner(const char *name, Oid owner);
extern void ProjCatalogSaveProgress(const char *name, ProjTarget target,
									const ProjProgress *progress);
extern void ProjCatalogRecordError(const char *name, const char *message,
								   int sqlerrcode, int64 position, bool pause);
extern void ProjCatalogRecordSkipped(const char *name, ProjTarget target,
									 const ProjSkippedEvent *event);
extern void ProjCatalogResetForRebuild(const char *name);
extern void ProjCatalogSetLiveFrontier(const char *name, const ProjFrontier *frontier,
									   bool inline_active);
extern void ProjCatalogStartBuild(const char *name, const char *schema);
extern void ProjCatalogSetBuildAnalyzed(const char *name);
extern void ProjCatalogEndBuild(const char *name);
extern void ProjCatalogCompleteBuild(const char *name);

#endif							/* PROJECTIONS_CATALOG_H */
