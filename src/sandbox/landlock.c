/* SPDX-License-Identifier: Apache-2.0 */
typedef int kiln_landlock_placeholder_t;
