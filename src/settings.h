/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  What every file of the projections extension shares: its names, its
 *	  settings (GUCs, defined in settings.c), and the back-off of its retry
 *	  loops.  The map of the files and their layers is in src/README.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_SETTINGS_H
#define PROJECTIONS_SETTINGS_H

#define PROJ_EXTENSION_NAME		"projections"
#define PROJ_MAX_NAME_LEN		(NAMEDATALEN - 1)
#define PROJ_NOTIFY_CHANNEL		"projections"

/* the version of the SQL objects this library works with */
#define PROJ_SQL_VERSION		"0.3.0"

/* the search_path of every statement the extension runs as its owner */
#define PROJ_SAFE_SEARCH_PATH	"pg_catalog, pg_temp"

/* most worker processes one database may have (workers_per_database) */
#define PROJ_MAX_WORKERS_PER_DB	16

/* ---- settings ---- */
extern bool proj_enabled;
extern int	proj_batch_size;
extern int	proj_batch_handler_size;
extern int	proj_poll_interval_ms;
extern int	proj_max_databases;
extern int	proj_workers_per_database;
extern int	proj_stall_warning_ms;
extern int	proj_inline_switch_timeout_ms;
extern int	proj_handler_timeout_ms;
extern int	proj_max_retries;
extern int	proj_exchange_timeout_ms;
extern bool proj_maintenance;

/* exponential back-off after the n-th consecutive failure (n >= 0) */
extern int	ProjBackoffMs(int failures);

extern void ProjDefineSettings(void);

#endif							/* PROJECTIONS_SETTINGS_H */
