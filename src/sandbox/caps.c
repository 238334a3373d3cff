/* SPDX-License-Identifier: Apache-2.0 */
typedef int kiln_caps_placeholder_t;
