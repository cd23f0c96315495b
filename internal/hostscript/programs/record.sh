#!/bin/sh
# ---- record.sh: the root half of the recorder -------------------------------
# Installed by provision as /usr/local/lib/passport/record. sshd's
# ForceCommand for Passport's group runs
#   sudo -n -- /usr/local/lib/passport/record "$SSH_ORIGINAL_COMMAND"
# which sudo allows members of that group as root and nothing else. That
# first sudo keeps the user's real UID, so the user could kill it; this
# program, root through and through, starts the sudo that records: it runs
# the session program as the user with input and output in its I/O log, and
# being root's, the user cannot signal it. The command line is passed on as
# one argument and never interpreted here.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# sudo sets SUDO_USER to the account that ran it; it is never the caller's.
user=${SUDO_USER:-}
case $user in
'' | root | *[!a-z0-9-]*)
	printf '%s\n' 'passport: the recorder runs only for Passport users, through sudo' >&2
	exit 1
	;;
esac
exec sudo -n -u "$user" -- /usr/local/lib/passport/session "${1:-}"
