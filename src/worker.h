/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The per-database workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_WORKER_H
#define PROJECTIONS_WORKER_H

#include "fmgr.h"

extern PGDLLEXPORT void projections_worker_main(Datum main_arg);

#endif							/* PROJECTIONS_WORKER_H */
