/*-------------------------------------------------------------------------
 *
 * events.h
 *	  The event store: append, append_many, and the triggers on
 *	  projections.events.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_EVENTS_H
#define PROJECTIONS_EVENTS_H

extern void ProjEventsInit(void);

#endif							/* PROJECTIONS_EVENTS_H */
