/* -Z: drop root for good once the capture handle is open. */
#include "cap.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int cap_drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "-Z %s: no such user", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "-Z %s: cannot drop privileges: %s", user, strerror(errno));
		return -1;
	}
	/* setuid to non-root clears every capability; make sure it cannot come back. */
	if (setuid(0) == 0) {
		snprintf(err, errlen, "-Z %s: privileges were not dropped", user);
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return 0;
}
