/* SPDX-License-Identifier: Apache-2.0 */
/* The network namespace starts with lo down; bring it up so that builds can
 * use localhost. Nothing else exists in the namespace: no route out. */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "core/cleanup.h"
#include "sandbox/internal.h"

int kiln_net_lo_up(struct kiln_error **err)
{
	cleanup_fd int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;

	if (s < 0)
		return kiln_error_set(err, errno, "network: socket");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return kiln_error_set(err, errno, "network: get flags of lo");
	/* A namespace prepared by the caller has it up already (and we have
	 * no capability over it). */
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return kiln_error_set(err, errno, "network: bring up lo");
	return 0;
}
