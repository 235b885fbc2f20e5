/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Differences between the PostgreSQL major versions projections builds
 *	  against, kept in one place.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_COMPAT_H
#define PROJECTIONS_COMPAT_H

#include "postgres.h"

#include "utils/acl.h"
#include "utils/guc.h"

/* object_ownercheck() and object_aclcheck() replaced the per-class checks */
#if PG_VERSION_NUM >= 160000
/* the class ids they take (18's headers no longer bring them in) */
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#define ProjRelationOwnerCheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#define ProjProcedureAclCheck(procid, roleid, mode) \
	object_aclcheck(ProcedureRelationId, (procid), (roleid), (mode))
#define ProjDatabaseOwnerCheck(dboid, roleid) \
	object_ownercheck(DatabaseRelationId, (dboid), (roleid))
#else
#define ProjRelationOwnerCheck(relid, roleid) \
	pg_class_ownercheck((relid), (roleid))
#define ProjProcedureAclCheck(procid, roleid, mode) \
	pg_proc_aclcheck((procid), (roleid), (mode))
#define ProjDatabaseOwnerCheck(dboid, roleid) \
	pg_database_ownercheck((dboid), (roleid))
#endif

/* the marker of a database being dropped, named in 15.4, 14.9, ... */
#include "catalog/pg_database.h"
#ifndef DATCONNLIMIT_INVALID_DB
#define DATCONNLIMIT_INVALID_DB -2
#endif

/*
 * pg_noreturn, placed before a declaration, replaced pg_attribute_noreturn(),
 * placed after it, in 18
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/* MarkGUCPrefixReserved() appeared in 15 */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* string keys of dynahash tables are said so since 14 (and were the default) */
#include "utils/hsearch.h"
#ifndef HASH_STRINGS
#define HASH_STRINGS 0
#endif

/* shared memory must be requested from shmem_request_hook since 15 */
#if PG_VERSION_NUM >= 150000
#define PROJ_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/* ProcessUtility_hook gained readOnlyTree in 14 */
#if PG_VERSION_NUM >= 140000
#define PROJ_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define PROJ_UTILITY_PASS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc
#else
#define PROJ_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define PROJ_UTILITY_PASS \
	pstmt, queryString, context, params, queryEnv, dest, qc
#endif

/* getIdentitySequence() takes the relation since 17 */
#include "catalog/dependency.h"
#if PG_VERSION_NUM >= 170000
#define ProjIdentitySequence(rel, attnum) \
	getIdentitySequence((rel), (attnum), false)
#else
#define ProjIdentitySequence(rel, attnum) \
	getIdentitySequence(RelationGetRelid(rel), (attnum), false)
#endif

/* check constraints could be NOT ENFORCED from 18 on */
#if PG_VERSION_NUM >= 180000
#define ProjCheckEnforced(check) ((check)->ccenforced)
#else
#define ProjCheckEnforced(check) true
#endif

/* indnullsnotdistinct appeared in 15 */
#if PG_VERSION_NUM >= 150000
#define ProjIndexNullsNotDistinct(form) ((form)->indnullsnotdistinct)
#else
#define ProjIndexNullsNotDistinct(form) false
#endif

/*
 * A condition variable broadcast after each replayed record (on a standby
 * that may cascade), from 16 on: a standby's wait() sleeps on it.
 */
#include "storage/condition_variable.h"
#if PG_VERSION_NUM >= 160000
#include "replication/walreceiver.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#define ProjReplayConditionVariable() \
	(AllowCascadeReplication() && WalSndCtl != NULL ? &WalSndCtl->wal_replay_cv : NULL)
#else
#define ProjReplayConditionVariable() ((ConditionVariable *) NULL)
#endif

#endif							/* PROJECTIONS_COMPAT_H */
