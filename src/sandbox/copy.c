/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: replaced by the real implementation. */
#include "sandbox/copy.h"
#include <errno.h>
int kiln_copy_tree(int src_dir, int dst_dir, const struct kiln_copy_opts *opts, struct kiln_copy_stats *st, struct kiln_error **err) { return kiln_error_set(err, ENOSYS, "copy: not implemented"); }
void kiln_copy_stats_free(struct kiln_copy_stats *st) { }
