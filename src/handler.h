/*-------------------------------------------------------------------------
 *
 * handler.h
 *	  Calling user code (handlers and reset functions) as its owner.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_HANDLER_H
#define PROJECTIONS_HANDLER_H

#include "fmgr.h"

/* a handler or reset function, looked up for repeated calls */
typedef struct ProjCall
{
	FmgrInfo	flinfo;
	Oid			owner;
	char	   *search_path;	/* what each call runs under */
	const char *projection;
	bool		replaying;		/* it replays the history: a rebuild (plain or
								 * online), verify() */
} ProjCall;

/* why a function cannot be called for a projection */
typedef struct ProjCallProblem
{
	int			sqlerrcode;
	char	   *message;
} ProjCallProblem;

extern Oid	ProjResolveFunction(const char *signature);
extern bool ProjCheckCallable(const char *projection, const char *what,
							  const char *signature, Oid owner, Oid *func,
							  ProjCallProblem *problem);
extern void ProjRaiseProblem(const ProjCallProblem *problem);
extern char *ProjCallSearchPath(const char *registered, const char *first_schema);
extern void ProjCallPrepare(ProjCall *call, Oid func, Oid owner,
							const char *registered_path, const char *first_schema,
							const char *projection, MemoryContext cxt);
extern void ProjCallHandler(ProjCall *call, Datum arg);
extern void ProjCallReset(ProjCall *call);
extern bool ProjCallTimedOut(void);
extern bool ProjInReplayingCall(void);
extern bool ProjErrorIsTransient(int sqlerrcode, bool timed_out);
extern void ProjHandlerInit(void);

#endif							/* PROJECTIONS_HANDLER_H */
