/*-------------------------------------------------------------------------
 *
 * api.h
 *	  Helpers shared by the SQL-callable functions (api.c, wait.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_API_H
#define PROJECTIONS_API_H

#include "fmgr.h"

extern char *ProjNameArg(FunctionCallInfo fcinfo, int argno);
extern void ProjWarnIfNoWorker(const char *detail);

#endif							/* PROJECTIONS_API_H */
