/*-------------------------------------------------------------------------
 *
 * apply.h
 *	  The apply engine: the one code path that applies events to a model
 *	  and moves its checkpoint in the same transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_APPLY_H
#define PROJECTIONS_APPLY_H

#include "utils/snapshot.h"

#include "catalog.h"

typedef enum ProjApplyCaller
{
	PROJ_CALLER_WORKER,			/* one batch, never waits for locks */
	PROJ_CALLER_RUN				/* run() and the SQL API: waits, applies up to a limit */
} ProjApplyCaller;

typedef struct ProjApplyResult
{
	int64		applied;		/* events the handler was called for */
	bool		more;			/* events may remain */
	bool		drained;		/* everything below the safe key was seen */
	bool		blocked;		/* drained, but committed events wait behind the safe key */
	bool		failed;			/* paused (or the rebuild stopped) on a handler error */
	bool		locked_out;		/* another process applies it */
} ProjApplyResult;

extern void ProjApply(const char *name, ProjTarget target, ProjApplyCaller caller,
					  int64 max_events, ProjApplyResult *result);
extern void ProjApplyAll(ProjectionDef *def, ProjTarget target, const char *schema,
						 int64 horizon, bool latest, ProjApplyResult *result);
extern bool ProjModelWrittenHere(const ProjectionDef *def);
extern int64 ProjApplyScratch(ProjectionDef *def, const char *schema, Snapshot snapshot,
							  bool inline_all, int64 upto_key, int64 upto_pos);

#endif							/* PROJECTIONS_APPLY_H */
