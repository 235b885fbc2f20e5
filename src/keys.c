/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Ordering keys, the safe key, and the per-database key offset.
 *
 * Each event stores ordering_key = greatest(xid + offset, ordering_key of
 * the stream's previous event), where xid is the appending transaction's
 * full transaction id.  A reader only consumes events with ordering_key <
 * xmin(snapshot) + offset (the "safe key"), so an event whose transaction
 * may still commit is never passed over.
 *
 * The offset is zero until a restore brings in keys from a cluster whose
 * transaction ids ran ahead of this one ("stale": a key at or above the
 * next transaction id plus the offset).  Then it must move forward, so that
 * every key assigned later is above every restored one.  Reads never move
 * it, and neither do appends: moving it waits for every appender.  It moves
 *
 *	- at the end of the restoring transaction itself (pg_restore inserting
 *	  events that carry their keys: the insert trigger notes it, and the
 *	  transaction's pre-commit callback repairs);
 *	- when the worker finds it stale (a restore done with triggers off);
 *	- when projections.repair_key_offset() is called.
 *
 * Until then an append refuses with a clear error rather than give a key
 * below the restored ones.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "settings.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "keys.h"
#include "registry.h"
#include "shmem.h"

static bool offset_valid = false;
static int64 offset_value = 0;
static bool offset_stale = false;

/* the current transaction restored events whose keys may be ahead */
static bool repair_at_commit = false;

static ProjStatement read_offset_stmt = {
	"SELECT o.key_offset FROM projections.key_offset o", 0
};

/* (the statements here only use what every version's catalog has) */
static ProjStatement max_key_stmt = {
	"SELECT greatest((SELECT max(e.ordering_key) FROM projections.events e),"
	" (SELECT max(p.checkpoint_key) FROM projections.projection p))", 0
};

static ProjStatement set_offset_stmt = {
	"UPDATE projections.key_offset SET key_offset = $1", 1, {INT8OID}
};

/*
 * A 32-bit transaction id, not older than the oldest running one, as a
 * 64-bit full transaction id.
 */
static uint64
FullXid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return ((uint64) epoch << 32) | xid;
}

/* The first column of the first row of the last result, or 0 if null. */
static int64
FirstInt8(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/* Read the offset and whether keys present are ahead of it.  Read only. */
static void
LoadOffset(void)
{
	int64		max_key;
	uint64		next;

	SPI_connect();
	ProjRun(&read_offset_stmt, NULL, NULL, true, 1);
	offset_value = FirstInt8();
	ProjRun(&max_key_stmt, NULL, NULL, true, 1);
	max_key = FirstInt8();
	SPI_finish();

	next = U64FromFullTransactionId(ReadNextFullTransactionId());
	/* (a standby follows its primary's offset: the primary repairs) */
	offset_stale = !RecoveryInProgress() && max_key >= (int64) next + offset_value;
	offset_valid = true;
}

/*
 * The ordering-key offset of this database, read once per process and
 * again whenever the key offset relation is invalidated.
 */
int64
ProjKeyOffset(void)
{
	if (!offset_valid)
		LoadOffset();
	return offset_value;
}

/* Whether restored keys are ahead of the offset (a repair is due). */
bool
ProjKeyOffsetStale(void)
{
	(void) ProjKeyOffset();
	return offset_stale;
}

/* Read the offset (and whether it is stale) again at the next use. */
void
ProjKeyOffsetForget(void)
{
	offset_valid = false;
}

/*
 * Move the offset forward so that every key assigned from now on is above
 * every key present, under a lock that waits for every appender (at most
 * timeout_ms, or without bound with -1: then false, nothing done).  Returns
 * whether it moved.  Never on a standby.
 */
bool
ProjRepairKeyOffset(int timeout_ms)
{
	const ProjExtInfo *ext = ProjExtGet(false);
	int64		offset;
	int64		max_key;
	uint64		oldest;
	FullTransactionId own;
	Snapshot	snap;
	bool		moved = false;

	if (RecoveryInProgress())
		return false;

	if (timeout_ms < 0)
		LockRelationOid(ext->events_relid, ShareRowExclusiveLock);
	else if (!ProjLockTimeout(ext->events_relid, ShareRowExclusiveLock, timeout_ms))
		return false;
	SPI_connect();
	ProjRun(&read_offset_stmt, NULL, NULL, true, 1);
	offset = FirstInt8();
	ProjRun(&max_key_stmt, NULL, NULL, true, 1);
	max_key = FirstInt8();

	snap = GetLatestSnapshot();
	oldest = FullXid(snap->xmin);
	own = GetTopFullTransactionIdIfAny();
	if (FullTransactionIdIsValid(own) && U64FromFullTransactionId(own) < oldest)
		oldest = U64FromFullTransactionId(own);

	if (max_key >= (int64) oldest + offset)
	{
		int64		new_offset = max_key + 1 - (int64) oldest;
		Datum		arg = Int64GetDatum(new_offset);

		ProjRun(&set_offset_stmt, &arg, NULL, true, 0);
		ereport(LOG,
				(errmsg("projections: ordering keys moved forward by "
						INT64_FORMAT " in database \"%s\"",
						new_offset - offset, get_database_name(MyDatabaseId)),
				 errdetail("The events table holds ordering keys above this "
						   "cluster's transaction ids, as after a restore "
						   "from another cluster.")));
		moved = true;
		/* every process reads it again after this transaction commits */
		CacheInvalidateRelcacheByRelid(ext->offset_relid);
	}
	SPI_finish();
	offset_valid = false;
	return moved;
}

/*
 * A restored event (one inserted with its key, by pg_restore) has this
 * ordering key: if it is ahead of the offset, the restoring transaction
 * repairs the offset before it commits.
 */
void
ProjKeyRestored(int64 key)
{
	if (key >= (int64) U64FromFullTransactionId(ReadNextFullTransactionId()) +
		ProjKeyOffset())
		repair_at_commit = true;
}

/*
 * The safe key of a snapshot: every event with a smaller ordering key was
 * written by a transaction that had ended when the snapshot was taken.
 */
int64
ProjSafeKey(Snapshot snapshot)
{
	TransactionId horizon = snapshot->xmin;
	TransactionId *replays;
	int			nreplays = 0;

	/*
	 * The transactions of the workers that replay the history (rebuilds)
	 * append no event: leave them out, so that a long batch of a rebuild
	 * does not hold back what the live projections may apply.  (On a
	 * standby the snapshot lists no transactions this way: keep its xmin.)
	 */
	if (!snapshot->takenDuringRecovery &&
		(replays = ProjReplayXids(&nreplays)) != NULL)
	{
		TransactionId own = GetTopTransactionIdIfAny();
		uint32		i;
		int			j;

		horizon = snapshot->xmax;
		for (i = 0; i < snapshot->xcnt; i++)
		{
			TransactionId xid = snapshot->xip[i];
			bool		skip = false;

			for (j = 0; j < nreplays && !skip; j++)
				skip = TransactionIdEquals(xid, replays[j]);
			if (!skip && TransactionIdPrecedes(xid, horizon))
				horizon = xid;
		}
		if (TransactionIdIsValid(own) && !ProjAppendsRefused() &&
			TransactionIdPrecedes(own, horizon))
			horizon = own;
		pfree(replays);
	}
	return (int64) FullXid(horizon) + ProjKeyOffset();
}

/*
 * The smallest ordering key the current transaction may give an event.  An
 * append never repairs a stale offset (that waits for every other appender,
 * and two appenders would deadlock on it): it refuses.
 */
int64
ProjNewKeyBase(void)
{
	FullTransactionId xid;

	if (ProjKeyOffsetStale())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ordering keys of restored events are ahead of this cluster's transaction ids"),
				 errdetail("A new event would sort before events that were restored from another cluster."),
				 errhint("The projections worker repairs this within a poll interval; "
						 "without it, run SELECT projections.repair_key_offset() once.")));
	xid = GetTopFullTransactionId();
	return (int64) U64FromFullTransactionId(xid) + offset_value;
}

/* The key base of the current transaction, if it has an xid (else 0). */
int64
ProjOwnKeyBase(void)
{
	FullTransactionId own = GetTopFullTransactionIdIfAny();

	if (!FullTransactionIdIsValid(own))
		return 0;
	return (int64) U64FromFullTransactionId(own) + ProjKeyOffset();
}

/*
 * Transaction callback: a transaction that restored events with keys ahead
 * of the offset repairs it just before it commits, so that nothing appended
 * after the restore can sort before the restored events.
 */
static void
KeysXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (repair_at_commit)
			{
				bool		pushed = false;

				repair_at_commit = false;
				if (ProjExtGet(true) == NULL)
					break;
				if (!ActiveSnapshotSet())
				{
					PushActiveSnapshot(GetTransactionSnapshot());
					pushed = true;
				}
				(void) ProjRepairKeyOffset(-1);
				if (pushed)
					PopActiveSnapshot();
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			repair_at_commit = false;
			break;
		default:
			break;
	}
}

/* Relcache callback: read the offset again when its relation changes. */
static void
InvalidateOffset(Datum arg, Oid relid)
{
	const ProjExtInfo *ext = ProjExtPeek();

	if (!OidIsValid(relid) || ext == NULL || relid == ext->offset_relid)
		offset_valid = false;
}

void
ProjKeysInit(void)
{
	CacheRegisterRelcacheCallback(InvalidateOffset, (Datum) 0);
	RegisterXactCallback(KeysXactCallback, NULL);
}
