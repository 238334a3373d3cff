/* SPDX-License-Identifier: Apache-2.0 */
/* The result of a run and its JSON report (documented in docs/sandbox.md). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/internal.h"

static void strv_add(char ***v, const char *s)
{
	size_t n = 0;
	char **nv;

	if (*v != NULL)
		while ((*v)[n] != NULL)
			n++;
	for (size_t i = 0; i < n; i++)
		if (strcmp((*v)[i], s) == 0)
			return;
	nv = realloc(*v, (n + 2) * sizeof(char *));
	if (nv == NULL)
		return;
	nv[n] = strdup(s);
	nv[n + 1] = NULL;
	*v = nv;
}

static void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

void kiln_result_add_protection(struct kiln_result *r, const char *name)
{
	strv_add(&r->protections, name);
}

void kiln_result_add_not_applied(struct kiln_result *r, const char *name)
{
	strv_add(&r->not_applied, name);
}

void kiln_result_free(struct kiln_result *r)
{
	if (r == NULL)
		return;
	strv_free(r->protections);
	strv_free(r->not_applied);
	strv_free(r->export_skipped);
	free(r->export_error);
	free(r->cgroup_version);
	free(r->archive_error);
	free(r);
}

const char *kiln_reason_name(enum kiln_reason r)
{
	switch (r) {
	case KILN_REASON_EXITED: return "exited";
	case KILN_REASON_SIGNALED: return "signaled";
	case KILN_REASON_TIMEOUT: return "timeout";
	case KILN_REASON_MEMORY: return "memory";
	case KILN_REASON_PIDS: return "pids";
	case KILN_REASON_DISK: return "disk";
	case KILN_REASON_OUTPUT_LIMIT: return "output-limit";
	case KILN_REASON_CANCELLED: return "cancelled";
	case KILN_REASON_ARCHIVE: return "archive";
	default: return "unknown";
	}
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

char *kiln_result_to_json(const struct kiln_result *r)
{
	json_t *o = json_object(), *den = json_object(), *exp;
	char *s;

	json_object_set_new(o, "exit_code", json_integer(r->exit_code));
	json_object_set_new(o, "status", r->status >= 0 ? json_integer(r->status) : json_null());
	json_object_set_new(o, "signal", r->signal ? json_integer(r->signal) : json_null());
	json_object_set_new(o, "reason", json_string(kiln_reason_name(r->reason)));
	json_object_set_new(o, "wall_time_ms", json_integer((json_int_t)(r->wall_ns / 1000000)));
	json_object_set_new(o, "user_cpu_ms", json_integer((json_int_t)(r->user_ns / 1000000)));
	json_object_set_new(o, "system_cpu_ms", json_integer((json_int_t)(r->sys_ns / 1000000)));
	json_object_set_new(o, "peak_memory_bytes",
			    r->peak_memory ? json_integer((json_int_t)r->peak_memory)
					   : json_null());
	json_object_set_new(o, "output_bytes", json_integer((json_int_t)r->output_bytes));
	json_object_set_new(o, "seccomp_denials", json_integer((json_int_t)r->seccomp_denials));
	for (size_t i = 0; i < r->ndenied; i++)
		json_object_set_new(den, r->denied[i].name,
				    json_integer((json_int_t)r->denied[i].count));
	json_object_set_new(o, "denied_syscalls", den);
	json_object_set_new(o, "protections", strv_json(r->protections));
	json_object_set_new(o, "not_applied", strv_json(r->not_applied));
	json_object_set_new(o, "archive_error",
			    r->archive_error ? json_string(r->archive_error) : json_null());
	json_object_set_new(o, "setup_ms", json_real((double)r->setup_ns / 1e6));
	json_object_set_new(o, "cgroup",
			    r->cgroup_version ? json_string(r->cgroup_version) : json_null());
	if (r->exported || r->export_error) {
		exp = json_object();
		json_object_set_new(exp, "files", json_integer((json_int_t)r->export_files));
		json_object_set_new(exp, "bytes", json_integer((json_int_t)r->export_bytes));
		json_object_set_new(exp, "skipped", strv_json(r->export_skipped));
		json_object_set_new(exp, "error",
				    r->export_error ? json_string(r->export_error) : json_null());
		json_object_set_new(o, "export", exp);
	}
	s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}
