/* SPDX-License-Identifier: Apache-2.0 */
typedef int kiln_init_placeholder_t;
