/* SPDX-License-Identifier: Apache-2.0 */
typedef int kiln_mounts_placeholder_t;
