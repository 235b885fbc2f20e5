/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The cluster-wide launcher, which starts a worker per database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_LAUNCHER_H
#define PROJECTIONS_LAUNCHER_H

#include "fmgr.h"
#include "postmaster/bgworker.h"

extern void ProjRegisterLauncher(void);
extern bool ProjRegisterWorker(Oid dboid, int slot, int index,
							   BackgroundWorkerHandle **handle);
extern PGDLLEXPORT void projections_launcher_main(Datum main_arg);

#endif							/* PROJECTIONS_LAUNCHER_H */
