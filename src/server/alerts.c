/* SPDX-License-Identifier: Apache-2.0 */
/* Anomaly alerts (docs/alerts.md). */
#include "server/server.h"
#include "store/stats.h"

void kiln_alerts_check(struct kiln_server *s, struct kiln_db *db, int64_t id,
		       const struct kiln_stats_job *j)
{
	(void)s;
	(void)db;
	(void)id;
	(void)j;
}

json_t *kiln_alerts_list(struct kiln_db *db, const struct kiln_auth *a, int limit)
{
	(void)db;
	(void)a;
	(void)limit;
	return json_pack("{s:[]}", "alerts");
}
