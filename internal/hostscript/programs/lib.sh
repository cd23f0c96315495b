# ---- lib.sh: shared by every Passport host program -------------------------
# POSIX sh only: AWS-RunShellScript runs this with /bin/sh, which is dash on
# Debian. No `set -e`: its rules inside functions and `||` lists are a trap,
# so every step checks its own result and names itself in `step`.
set -u
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# C locale: character classes and ranges mean ASCII, so a Unicode look-alike
# can never pass for a letter in the checks below.
LC_ALL=C
export PATH LC_ALL
IFS=' 	
'
nl='
'

# Exit codes (mirrored by the Go package; keep both in step).
EX_FAILED=1    # a step failed unexpectedly
EX_DATA=2      # the data block was refused; nothing was changed
EX_HOST=3      # the host lacks a tool or file Passport needs
EX_CONFLICT=4  # the user exists but is not this Passport grant's
EX_NOTFOUND=5  # no such Passport user (extend)
EX_SSHD=6      # sshd's configuration is invalid; previous files restored
EX_SUDOERS=7   # visudo rejected the sudoers drop-in; it was not installed
EX_LOCK=8      # another Passport program held the host lock too long
EX_UID=10      # no UID of Passport's range can be given safely; nothing changed
EX_RECORDING=11 # recording was required and this host cannot record; nothing changed

PP_ETC=/etc/passport
PP_PRINCIPALS=$PP_ETC/principals
PP_CAS=$PP_ETC/ca
PP_TRUSTED=$PP_ETC/trusted-user-ca-keys
PP_KRL=$PP_ETC/revoked.krl
PP_GRANTS=/var/lib/passport/grants
PP_LIB=/usr/local/lib/passport
PP_SWEEP=$PP_LIB/sweep
# The recorder: sshd's ForceCommand runs every login of a Passport user
# through PP_RECORD (as root), which runs PP_SESSION as the user inside
# sudo's I/O log, in PP_RECORDINGS/<user>/<session>: the recording. Root
# owns all of it; recordings outlive the user until Passport collects them.
PP_RECORD=$PP_LIB/record
PP_SESSION=$PP_LIB/session
PP_RECORDINGS=/var/lib/passport/recordings
PP_GROUP=passport
# Written when Passport creates its group: a group of that name without it
# belongs to someone else, and its members must not become Passport users.
PP_GROUP_MARK=$PP_ETC/group-created
PP_HOME=/home
PP_LOCK=/run/passport.lock
SSHD_CONFIG=/etc/ssh/sshd_config
SSHD_DROPIN_DIR=/etc/ssh/sshd_config.d
SSHD_DROPIN=$SSHD_DROPIN_DIR/10-passport.conf
SUDOERS_DIR=/etc/sudoers.d
PP_RECORDER_SUDOERS=$SUDOERS_DIR/passport_recorder
# Passport's UIDs. Each new Passport user gets the next number of this range
# that no earlier Passport user had on this host, and a private group of the
# same number; PP_UID_MARK keeps the last number handed out. A number is
# never handed out twice, so whatever an earlier user left behind cannot
# come to belong to a later one. The range lies above what distributions
# and systemd allocate (people end at 60000, container ranges at
# 1879048191) and below 2^31.
PP_UID_MIN=1900000000
PP_UID_MAX=1999999999
PP_UID_MARK=/var/lib/passport/uid-high-water
# Where a UID can own something outside its home: the at, cron and mail
# spools (by their Debian, RHEL and SUSE paths) and the world-writable
# directories.
UID_SPOOLS='/var/spool/cron /var/spool/at /var/spool/atjobs /var/mail'
UID_SCRATCH='/tmp /var/tmp /dev/shm /run/lock /var/crash'

# Validation patterns (POSIX ERE, whole value). The Go package applies the
# same rules before it encodes; the host applies them again because it must
# not trust what arrives over the network.
RE_USER='[a-z][a-z0-9-]{0,19}'
RE_REQUEST='[A-Za-z0-9][A-Za-z0-9._-]{0,63}'
RE_REQUESTER='[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}'
RE_EPOCH='[1-9][0-9]{0,10}'
RE_UID='[1-9][0-9]{0,9}'
RE_SERIAL='0|[1-9][0-9]{0,19}'
RE_BOOL='0|1'
RE_CA_TYPE='ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa'
RE_CA_KEY='[A-Za-z0-9+/]{16,}={0,2}'
# grep compiles a large bounded repeat slowly (seconds for {16,2048}), so
# the key's length is checked apart from its alphabet.
CA_KEY_MAX=2048

action=unknown
step=start
work=
done_result=0
changed=

# result prints the one line the Go side parses; every program ends with it.
result() {
	printf 'passport-result action=%s status=%s' "$action" "$1"
	shift
	for kv in "$@"; do
		printf ' %s' "$kv"
	done
	printf '\n'
	done_result=1
}

# die reports a failed step on stderr and in the result line, then exits.
die() {
	code=$1
	shift
	printf 'passport %s: step %s failed: %s\n' "$action" "$step" "$*" >&2
	result error "code=$code" "step=$step"
	exit "$code"
}

warn() {
	printf 'passport %s: %s\n' "$action" "$*" >&2
}

on_exit() {
	rc=$?
	close_mqueues
	if [ -n "$work" ]; then
		rm -rf -- "$work"
	fi
	if [ "$done_result" = 0 ]; then
		# Only an unforeseen failure gets here: a signal, or a bug.
		[ "$rc" = 0 ] && rc=$EX_FAILED
		printf 'passport %s: stopped during step %s (exit %s)\n' "$action" "$step" "$rc" >&2
		result error "code=$rc" "step=$step"
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 1' HUP INT TERM

note_change() {
	changed=${changed:+$changed,}$1
}

need_tools() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || die "$EX_HOST" "this host has no $tool; install it and retry"
	done
}

make_work() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/passport.XXXXXXXX") || die "$EX_FAILED" "cannot create a private work directory"
}

# lock_host serialises Passport programs on this host: two provisions at once
# would otherwise race on the sshd configuration. flock comes with util-linux
# (and busybox); a host without it runs unserialised rather than not at all.
lock_host() {
	step=lock
	if ! command -v flock >/dev/null 2>&1; then
		warn "flock is missing; running without the host lock"
		return 0
	fi
	# A failed redirection on exec ends a POSIX shell on the spot, so the
	# lock file is probed in a subshell first.
	(: >>"$PP_LOCK") 2>/dev/null || die "$EX_FAILED" "cannot open $PP_LOCK"
	exec 9>>"$PP_LOCK"
	flock -w 120 9 || die "$EX_LOCK" "another Passport program held $PP_LOCK for 2 minutes; retry later"
}

# valid VALUE PATTERN: VALUE is one line that matches PATTERN entirely.
valid() {
	case $1 in
	*"$nl"*) return 1 ;;
	esac
	printf '%s\n' "$1" | grep -Eqx -- "$2"
}

# check_field NAME VALUE PATTERN refuses the whole run on a bad field.
check_field() {
	valid "$2" "$3" || die "$EX_DATA" "field $1 is not valid"
}

# decode_data ACTION KEYS: decode $PASSPORT_DATA and refuse it unless it is
# exactly the lines "KEY=value" for KEYS, in order, made of a narrow set of
# bytes, and meant for ACTION. Values are read with field afterwards.
decode_data() {
	step=decode
	case $PASSPORT_DATA in
	'' | *[!A-Za-z0-9+/=]*) die "$EX_DATA" "the data block is not base64" ;;
	esac
	[ "${#PASSPORT_DATA}" -le 8192 ] || die "$EX_DATA" "the data block is too long"
	need_tools base64 grep sed tr wc mktemp
	make_work
	printf '%s' "$PASSPORT_DATA" | base64 -d >"$work/data" 2>/dev/null ||
		die "$EX_DATA" "the data block is not valid base64"
	# Any byte outside this set (NUL, quotes, spaces, $, `, ;, non-ASCII...)
	# is refused before a single value is looked at.
	stray=$(tr -d 'A-Za-z0-9._@+/=:\n-' <"$work/data" | wc -c)
	[ "$stray" -eq 0 ] || die "$EX_DATA" "the data block holds forbidden bytes"
	grep -Evqx '[a-z_]+=.*' "$work/data" && die "$EX_DATA" "the data block has a malformed line"
	got=$(sed 's/=.*//' "$work/data" | tr '\n' ' ')
	[ "$got" = "$2 " ] || die "$EX_DATA" "the data block does not hold exactly: $2"
	[ "$(field format)" = 1 ] || die "$EX_DATA" "the data block has an unknown format"
	[ "$(field action)" = "$1" ] || die "$EX_DATA" "the data block is not meant for $1"
}

# field KEY prints KEY's value; decode_data guaranteed each key is present once.
field() {
	sed -n "s/^$1=//p" "$work/data"
}

# check_serial refuses a serial above 2^64-1; ssh-keygen would read it modulo
# nothing, but failing here names the field.
check_serial() {
	check_field serial "$1" "$RE_SERIAL"
	if [ "${#1}" -eq 20 ]; then
		top=$(printf '%s\n%s\n' 18446744073709551615 "$1" | sort | tail -n 1)
		[ "$top" = 18446744073709551615 ] || die "$EX_DATA" "field serial is not valid"
	fi
}

# check_ca_key TYPE KEY FILE writes "TYPE KEY" to FILE and has ssh-keygen
# confirm it is a public key of that type (not a certificate, not garbage).
check_ca_key() {
	check_field ca_type "$1" "$RE_CA_TYPE"
	[ "${#2}" -le "$CA_KEY_MAX" ] || die "$EX_DATA" "field ca_key is too long"
	check_field ca_key "$2" "$RE_CA_KEY"
	printf '%s %s\n' "$1" "$2" >"$3" || die "$EX_FAILED" "cannot write $3"
	ssh-keygen -l -f "$3" >/dev/null 2>&1 || die "$EX_DATA" "field ca_key is not a $1 public key"
}

user_exists() {
	id -u "$1" >/dev/null 2>&1
}

# is_passport_user: only members of Passport's group are ever touched, so a
# name that collides with a real account (root, admin) is refused, not removed.
is_passport_user() {
	[ -f "$PP_GROUP_MARK" ] || return 1
	uid=$(id -u "$1" 2>/dev/null) || return 1
	[ "$uid" -ne 0 ] || return 1
	id -nG "$1" 2>/dev/null | tr ' ' '\n' | grep -qx "$PP_GROUP"
}

# record_field USER KEY reads a value from a grant record.
record_field() {
	sed -n "s/^$2=//p" "$PP_GRANTS/$1" 2>/dev/null
}

# put_file TMP DEST MODE NAME installs TMP as DEST (atomically, by rename in
# DEST's directory) unless DEST already has that content; returns 0 when it
# changed something. TMP must live in DEST's directory.
put_file() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		rm -f -- "$1"
		return 1
	fi
	chmod "$3" "$1" || die "$EX_FAILED" "cannot set the mode of $2"
	mv -f -- "$1" "$2" || die "$EX_FAILED" "cannot install $2"
	note_change "$4"
	return 0
}

# tmp_in DIR prints a fresh file name in DIR that no consumer reads: sshd
# includes only *.conf and sudo skips names containing a dot.
tmp_in() {
	mktemp "$1/.passport.XXXXXXXX" || die "$EX_FAILED" "cannot create a file in $1"
}

# rebuild_trusted_cas writes the union of the CA keys of the Passport users
# on this host to the file sshd's TrustedUserCAKeys names. sshd cannot bind a
# CA to one user, so a CA is trusted only while one of its grants lives here;
# the per-user principals file still limits each certificate to its user.
rebuild_trusted_cas() {
	step='trusted-ca-keys'
	tmp=$(tmp_in "$PP_ETC")
	{
		printf '# Managed by Passport: CA keys of the grants on this host.\n'
		for f in "$PP_CAS"/*.pub; do
			[ -f "$f" ] && cat -- "$f"
		done | sort -u
	} >"$tmp" || die "$EX_FAILED" "cannot write the trusted CA keys"
	put_file "$tmp" "$PP_TRUSTED" 0644 trusted-ca-keys || true
}

# pause waits a fraction of a second where sleep allows it (GNU, busybox).
pause() {
	sleep 0.2 2>/dev/null || sleep 1
}

# session_pids UID prints the processes started from UID's login sessions:
# the audit loginuid that sshd's PAM stack sets survives sudo, so a root
# shell the user opened with sudo is found too. Reading races with exiting
# processes, hence the silenced errors.
session_pids() {
	{
		for f in /proc/[0-9]*/loginuid; do
			# loginuid has no final newline, so read reports EOF while
			# it fills owner; only the value counts.
			owner=
			read -r owner <"$f"
			[ "$owner" = "$1" ] || continue
			f=${f#/proc/}
			[ "${f%/loginuid}" = "$$" ] || printf '%s\n' "${f%/loginuid}"
		done
	} 2>/dev/null
}

# signal_user SIGNAL UID sends SIGNAL to everything UID runs or started.
signal_user() {
	pkill "-$1" -U "$2" 2>/dev/null
	pkill "-$1" -u "$2" 2>/dev/null
	pids=$(session_pids "$2")
	# shellcheck disable=SC2086 # one argument per pid
	[ -z "$pids" ] || kill "-$1" $pids 2>/dev/null
}

user_running() {
	pgrep -U "$1" >/dev/null 2>&1 || pgrep -u "$1" >/dev/null 2>&1 || [ -n "$(session_pids "$1")" ]
}

# end_processes UID: TERM everything the user runs, give it a moment to exit
# cleanly, then KILL whatever is left (repeatedly: a process may fork while
# we look). Returns non-zero if something survives.
end_processes() {
	signal_user TERM "$1"
	n=0
	while [ "$n" -lt 10 ]; do
		user_running "$1" || return 0
		pause
		n=$((n + 1))
	done
	n=0
	while [ "$n" -lt 20 ]; do
		signal_user KILL "$1"
		pause
		user_running "$1" || return 0
		n=$((n + 1))
	done
	return 1
}

# passport_uid UID: UID is a number of Passport's range.
passport_uid() {
	valid "$1" "$RE_UID" && [ "$1" -ge "$PP_UID_MIN" ] && [ "$1" -le "$PP_UID_MAX" ]
}

# ipc_ids KIND UID prints the ids of the System V objects of KIND (shm, msg
# or sem) that UID owns or created, from the kernel's own tables, whose
# second column is the id.
ipc_ids() {
	[ -r "/proc/sysvipc/$1" ] || return 0
	awk -v uid="$2" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["uid"] == uid || $col["cuid"] == uid { print $2 }' "/proc/sysvipc/$1"
}

mq_dir=
mq_mount=
# open_mqueues sets mq_dir to where this host's POSIX message queues can be
# listed and removed: /dev/mqueue where systemd mounted it, else a mount of
# Passport's own (an IPC namespace has one set of queues, which every mount
# shows). A kernel without message queues leaves mq_dir empty; it returns
# non-zero when they exist but cannot be reached.
open_mqueues() {
	[ -n "$mq_dir" ] && return 0
	if awk '$2 == "/dev/mqueue" && $3 == "mqueue" { f = 1 } END { exit !f }' /proc/self/mounts 2>/dev/null; then
		mq_dir=/dev/mqueue
		return 0
	fi
	grep -qw mqueue /proc/filesystems 2>/dev/null || return 0
	mq_mount=$(mktemp -d "${TMPDIR:-/tmp}/passport-mqueue.XXXXXXXX") || return 1
	if ! mount -t mqueue none "$mq_mount" 2>/dev/null; then
		rmdir -- "$mq_mount"
		mq_mount=
		return 1
	fi
	mq_dir=$mq_mount
}

# close_mqueues undoes open_mqueues' own mount. Never rm -r it: that would
# remove every queue on the host.
close_mqueues() {
	[ -n "$mq_mount" ] || return 0
	umount "$mq_mount" 2>/dev/null && rmdir -- "$mq_mount"
	mq_mount=
	mq_dir=
}

# uid_owns UID prints, a line each, the first few things UID owns on this
# host outside the account database: processes, System V IPC objects, POSIX
# message queues, and files in the spools, the world-writable directories
# and directly in /home.
uid_owns() {
	{
		pgrep -U "$1"
		pgrep -u "$1"
		session_pids "$1"
	} 2>/dev/null | sed 's/^/process /'
	for kind in shm msg sem; do
		ipc_ids "$kind" "$1" | sed "s/^/System V $kind id /"
	done
	open_mqueues && [ -n "$mq_dir" ] && find "$mq_dir" -maxdepth 1 -type f -uid "$1" 2>/dev/null | sed 's|^.*/|POSIX message queue /|'
	for d in $UID_SPOOLS $UID_SCRATCH; do
		[ -d "$d" ] && find "$d" -xdev -uid "$1" -print 2>/dev/null
	done
	[ -d "$PP_HOME" ] && find "$PP_HOME" -xdev -maxdepth 1 -uid "$1" -print 2>/dev/null
}

# remove_keyed UID removes what UID owns outside its home and the account
# database: at jobs, crontabs and mail in the spools, files in the
# world-writable directories, System V IPC objects and POSIX message queues.
# UID's processes must have ended (they could make more). On failure it
# says why and returns non-zero.
remove_keyed() {
	for d in $UID_SPOOLS $UID_SCRATCH; do
		[ -d "$d" ] && find "$d" -xdev -depth -uid "$1" -delete 2>/dev/null
	done
	for kind in shm msg sem; do
		ids=$(ipc_ids "$kind" "$1")
		[ -n "$ids" ] || continue
		if ! command -v ipcrm >/dev/null 2>&1; then
			warn "uid $1 owns System V IPC objects ($kind) and this host has no ipcrm to remove them"
			return 1
		fi
		case $kind in
		shm) opt=-m ;;
		msg) opt=-q ;;
		*) opt=-s ;;
		esac
		for id in $ids; do
			ipcrm "$opt" "$id" 2>/dev/null || { warn "ipcrm $opt $id (uid $1) failed"; return 1; }
		done
	done
	if ! open_mqueues; then
		warn "cannot mount the POSIX message queue filesystem to remove those of uid $1"
		return 1
	fi
	[ -z "$mq_dir" ] || find "$mq_dir" -maxdepth 1 -type f -uid "$1" -delete 2>/dev/null
	return 0
}

# remove_user USER: everything Passport created for USER goes, in the order
# that closes the door first: no new logins, then no processes, then what
# its UID owns, then the account and its files. A user that is already gone
# is fine; what its UID may still own (a run cut short after userdel) is
# found by the UID its grant record keeps. On failure it prints why on
# stderr and returns non-zero; callers choose to die or go on.
remove_user() {
	ru=$1
	ruid=
	if user_exists "$ru"; then
		if ! is_passport_user "$ru"; then
			warn "$ru exists but is not a Passport user; it was left alone"
			return "$EX_CONFLICT"
		fi
		ruid=$(id -u "$ru")
		rm -f -- "$PP_PRINCIPALS/$ru"
		# An expired account is refused by PAM and by sshd itself, which
		# closes the door for any other way in while processes are ended.
		usermod -e 1 "$ru" >/dev/null 2>&1
		# Where systemd runs, the user's own manager would start lingering
		# units again, and restart what is killed: it goes first.
		if [ -d /run/systemd/system ] && command -v loginctl >/dev/null 2>&1; then
			loginctl disable-linger "$ru" >/dev/null 2>&1
			loginctl terminate-user "$ruid" >/dev/null 2>&1
		fi
	else
		ruid=$(record_field "$ru" uid)
		if ! passport_uid "$ruid" || getent passwd "$ruid" >/dev/null 2>&1; then
			ruid=
		fi
	fi
	if [ -n "$ruid" ]; then
		if ! end_processes "$ruid"; then
			warn "processes of $ru (uid $ruid) survived SIGKILL"
			return "$EX_FAILED"
		fi
		if command -v crontab >/dev/null 2>&1 && user_exists "$ru"; then
			crontab -r -u "$ru" >/dev/null 2>&1
		fi
		remove_keyed "$ruid" || return "$EX_FAILED"
	fi
	rm -f -- "/var/lib/systemd/linger/$ru"
	if user_exists "$ru"; then
		userdel -r "$ru" >/dev/null 2>"$work/userdel.err"
		if user_exists "$ru"; then
			warn "userdel $ru: $(head -c 300 "$work/userdel.err")"
			return "$EX_FAILED"
		fi
	fi
	# userdel leaves the private group where USERGROUPS_ENAB is off.
	if [ -n "$ruid" ] && [ "$(getent group "$ru" | cut -d: -f3)" = "$ruid" ]; then
		groupdel "$ru" >/dev/null 2>&1 || { warn "groupdel $ru failed"; return "$EX_FAILED"; }
	fi
	if [ -e "$PP_HOME/$ru" ]; then
		rm -rf -- "${PP_HOME:?}/$ru" || return "$EX_FAILED"
	fi
	if [ -n "$ruid" ]; then
		left=$(uid_owns "$ruid" | head -n 3 | tr '\n' ' ')
		[ -z "$left" ] || { warn "uid $ruid of $ru still owns: $left"; return "$EX_FAILED"; }
	fi
	rm -f -- "$PP_PRINCIPALS/$ru" "$PP_CAS/$ru.pub" "$SUDOERS_DIR/passport-$ru" "$PP_GRANTS/$ru" ||
		return "$EX_FAILED"
	return 0
}

# revoke_serial SERIAL CAFILE adds a certificate serial to the KRL sshd reads
# as RevokedKeys, scoped to the CA that issued it.
revoke_serial() {
	printf 'serial: %s\n' "$1" >"$work/krl-spec" || return 1
	if [ -f "$PP_KRL" ]; then
		ssh-keygen -k -u -s "$2" -f "$PP_KRL" "$work/krl-spec" >/dev/null 2>"$work/krl.err"
	else
		ssh-keygen -k -s "$2" -f "$PP_KRL" "$work/krl-spec" >/dev/null 2>"$work/krl.err"
	fi
	rc=$?
	[ "$rc" -eq 0 ] || warn "ssh-keygen -k: $(head -c 300 "$work/krl.err")"
	chmod 0644 "$PP_KRL" 2>/dev/null
	return "$rc"
}
# ---- end of lib.sh ---------------------------------------------------------
