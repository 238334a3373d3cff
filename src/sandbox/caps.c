/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dropping privilege in the build process. The order matters:
 * securebits and the bounding set need CAP_SETPCAP, so they come before
 * the uid switch; SECBIT_NO_SETUID_FIXUP means the switch itself does not
 * touch capabilities, so every set is cleared explicitly afterwards and
 * then verified. SECBIT_NOROOT (locked) makes uid 0 (--fake-root) gain
 * nothing at execve.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"

static int last_cap(void)
{
	int c;

	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability. */
	for (c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
			break;
	return c - 1;
}

int kiln_caps_drop_all(uid_t uid, gid_t gid, bool drop_groups, struct kiln_error **err)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};
	unsigned long secbits = SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP |
				SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT |
				SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
				SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
	int c, last = last_cap();

	if (drop_groups && setgroups(0, NULL) < 0)
		return kiln_error_set(err, errno, "setgroups");
	if (setresgid(gid, gid, gid) < 0)
		return kiln_error_set(err, errno, "setresgid %u", (unsigned)gid);
	if (prctl(PR_SET_SECUREBITS, secbits, 0, 0, 0) < 0)
		return kiln_error_set(err, errno, "lock securebits");
	for (c = 0; c <= last; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return kiln_error_set(err, errno,
					      "drop capability %d from the bounding set", c);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return kiln_error_set(err, errno, "clear ambient capabilities");
	if (setresuid(uid, uid, uid) < 0)
		return kiln_error_set(err, errno, "setresuid %u", (unsigned)uid);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return kiln_error_set(err, errno, "capset (clear all capability sets)");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kiln_error_set(err, errno, "set no_new_privs");

	/* Verify rather than trust: every set empty, bounding set empty. */
	if (syscall(SYS_capget, &hdr, data) < 0)
		return kiln_error_set(err, errno, "capget");
	for (c = 0; c < 2; c++)
		if (data[c].effective || data[c].permitted || data[c].inheritable)
			return kiln_error_set(err, EPERM,
					      "capabilities still present after dropping");
	for (c = 0; c <= last; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0)
			return kiln_error_set(err, EPERM, "capability %d still in the bounding set",
					      c);
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return kiln_error_set(err, EPERM, "no_new_privs not set");
	return 0;
}
