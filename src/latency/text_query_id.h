/*-------------------------------------------------------------------------
 *
 * text_query_id.h
 *	  Statement ids from normalized statement text (text_query_id.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_TEXT_QUERY_ID_H
#define CODER_HEALTH_TEXT_QUERY_ID_H

/* _PG_init: give statements that no one gave a query id one of ours */
extern void ch_text_query_id_request(void);

/*
 * The id of the statement at source[location .. location + len) from its
 * normalized text, for a utility statement that carries none
 * (compat_utility_query_id in pg/compat.h calls it).
 */
extern uint64 ch_text_query_id(const char *source, int location, int len);

/* the id of a planned statement at source[location .. location + len) */
extern uint64 ch_normalized_query_id(const char *source, int location, int len);
extern uint64 ch_normalized_query_id_uncached(const char *source, int location,
											  int len);

#endif							/* CODER_HEALTH_TEXT_QUERY_ID_H */
