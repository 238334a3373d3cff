/* SPDX-License-Identifier: Apache-2.0 */
typedef int kiln_userns_placeholder_t;
