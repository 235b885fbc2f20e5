/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  Ordering keys, the safe key, and the per-database key offset.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_KEYS_H
#define PROJECTIONS_KEYS_H

#include "utils/snapshot.h"

extern int64 ProjKeyOffset(void);
extern bool ProjKeyOffsetStale(void);
extern void ProjKeyOffsetForget(void);
extern bool ProjRepairKeyOffset(int timeout_ms);
extern void ProjKeyRestored(int64 key);
extern int64 ProjSafeKey(Snapshot snapshot);
extern int64 ProjNewKeyBase(void);
extern int64 ProjOwnKeyBase(void);
extern void ProjKeysInit(void);

#endif							/* PROJECTIONS_KEYS_H */
