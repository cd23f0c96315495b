#!/bin/sh
# ---- session.sh: every login of a recorded Passport user runs through this --
# Installed by provision as /usr/local/lib/passport/session. sshd's
# ForceCommand for Passport's group runs
#   sudo -n -u <the user> -- /usr/local/lib/passport/session "$SSH_ORIGINAL_COMMAND"
# and sudo, whose I/O log is the recording, runs this as the user itself.
# sudo stays root around it: the user can neither signal it nor read or
# change what it writes. This program only starts what the person asked
# for; it holds no secret and decides nothing.
set -u
shell=/bin/sh
[ -x /bin/bash ] && shell=/bin/bash
SHELL=$shell
export SHELL
cd "${HOME:-/}" 2>/dev/null || cd /
command=${1:-}
case $command in
'')
	# A login shell, on a terminal when the client asked for one.
	exec "$shell" -l
	;;
internal-sftp | 'internal-sftp '*)
	# sshd names its built-in SFTP server when the subsystem is configured
	# that way; under the recorder the same protocol comes from the binary.
	for server in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server; do
		[ -x "$server" ] && exec "$server"
	done
	printf '%s\n' 'passport: this host has no sftp-server program; install openssh-sftp-server' >&2
	exit 1
	;;
esac
exec "$shell" -c "$command"
