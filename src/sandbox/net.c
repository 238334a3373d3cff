/* SPDX-License-Identifier: Apache-2.0 */
typedef int kiln_net_placeholder_t;
