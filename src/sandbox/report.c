/* SPDX-License-Identifier: Apache-2.0 */
typedef int kiln_report_placeholder_t;
