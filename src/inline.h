/*-------------------------------------------------------------------------
 *
 * inline.h
 *	  Inline projections: handlers that run inside the appending
 *	  transaction, and switching projections to and from inline.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_INLINE_H
#define PROJECTIONS_INLINE_H

#include "catalog.h"

extern bool ProjInlineLockForSwitch(const char *name, bool raise);
extern void ProjInlineDeactivate(ProjectionDef *def);
extern void ProjInlineChanged(void);
extern void ProjInlineSkipRow(bool restored);
extern void *ProjInlineBeginCall(void);
extern void ProjInlineEndCall(void *call, bool flush);
extern void ProjInlineInit(void);

#endif							/* PROJECTIONS_INLINE_H */
