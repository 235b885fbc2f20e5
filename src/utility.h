/*-------------------------------------------------------------------------
 *
 * utility.h
 *	  The ProcessUtility hook.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROJECTIONS_UTILITY_H
#define PROJECTIONS_UTILITY_H

extern void ProjInstallUtilityHook(void);

#endif							/* PROJECTIONS_UTILITY_H */
