# ---- provision.sh: create or converge one Passport user --------------------
# Re-running it with the same data changes nothing; with a new expiry, serial
# or sudo flag it converges the host to the new data.
action=provision
decode_data provision "format action user request requester expires serial sudo record ca_type ca_key"
user=$(field user)
request=$(field request)
requester=$(field requester)
expires=$(field expires)
serial=$(field serial)
sudo=$(field sudo)
record=$(field record)
check_field user "$user" "$RE_USER"
check_field request "$request" "$RE_REQUEST"
check_field requester "$requester" "$RE_REQUESTER"
check_field expires "$expires" "$RE_EPOCH"
check_serial "$serial"
[ "$serial" != 0 ] || die "$EX_DATA" "field serial is not valid"
check_field sudo "$sudo" "$RE_BOOL"
check_field record "$record" "$RE_BOOL"
need_tools ssh-keygen sshd useradd usermod userdel groupadd groupdel getent id cmp sort comm awk readlink pgrep find
if [ "$sudo" = 1 ]; then
	# Checked before anything changes: a user without the sudo it was
	# promised is a half-done grant.
	need_tools visudo sudo
	[ -d "$SUDOERS_DIR" ] || die "$EX_HOST" "this host has no $SUDOERS_DIR"
fi
check_ca_key "$(field ca_type)" "$(field ca_key)" "$work/ca.pub"
lock_host

step=preflight
# A host whose sshd configuration is already broken must be fixed by a person:
# Passport cannot tell its own mistakes from someone else's there.
sshd -t >"$work/sshd-t.err" 2>&1 || die "$EX_SSHD" "sshd -t fails before Passport changed anything: $(head -c 300 "$work/sshd-t.err")"

# Every login is recorded where the host can record (sudo's I/O log around
# Passport's session program, forced by sshd); record=1 means the grant
# must not stand without it, so a host that cannot record is refused here,
# before anything changed.
step=recording
recording=on
record_why=
if ! command -v sudo >/dev/null 2>&1 || ! command -v visudo >/dev/null 2>&1; then
	record_why='sudo is not installed (its I/O log is the recorder)'
elif [ ! -d "$SUDOERS_DIR" ]; then
	record_why="this host has no $SUDOERS_DIR"
elif ! sshd -T >"$work/sshd-T" 2>&1; then
	record_why="sshd -T fails: $(head -c 200 "$work/sshd-T")"
elif ! grep -qx 'permituserenvironment no' "$work/sshd-T"; then
	# ~/.ssh/environment would reach the shell that starts the recorder.
	record_why="sshd's PermitUserEnvironment is on, so users could set variables before the recorder starts"
fi
if [ -n "$record_why" ]; then
	recording=off
	[ "$record" = 0 ] || die "$EX_RECORDING" "sessions cannot be recorded on this host: $record_why"
	warn "sessions on this host will not be recorded: $record_why"
fi

step='user-check'
if getent group "$PP_GROUP" >/dev/null 2>&1 && [ ! -f "$PP_GROUP_MARK" ]; then
	die "$EX_CONFLICT" "a group named $PP_GROUP exists that Passport did not create; its members would be held to certificate logins"
fi
if user_exists "$user"; then
	is_passport_user "$user" || die "$EX_CONFLICT" "user $user already exists and is not a Passport user"
fi
if [ -f "$PP_GRANTS/$user" ]; then
	[ "$(record_field "$user" request)" = "$request" ] ||
		die "$EX_CONFLICT" "user $user belongs to another Passport request"
elif getent group "$user" >/dev/null 2>&1 && ! user_exists "$user"; then
	die "$EX_CONFLICT" "a group named $user already exists on this host"
fi

# next_uid sets uid to the number a new Passport user gets: one past the
# host's high-water mark, skipping numbers an account or group outside
# Passport already holds. A number that still owns something is refused,
# not skipped: it means the mark was lost or moved back, or someone else
# uses Passport's range, and a person must look.
next_uid() {
	mark=$((PP_UID_MIN - 1))
	if [ -e "$PP_UID_MARK" ]; then
		mark=$(head -n 1 "$PP_UID_MARK" 2>/dev/null)
		if ! valid "$mark" "$RE_UID" || [ "$mark" -lt $((PP_UID_MIN - 1)) ] || [ "$mark" -gt "$PP_UID_MAX" ]; then
			die "$EX_UID" "$PP_UID_MARK does not hold a number of Passport's UID range $PP_UID_MIN-$PP_UID_MAX; set it to the highest UID a Passport user ever had on this host"
		fi
	fi
	uid=$((mark + 1))
	skipped=0
	while getent passwd "$uid" >/dev/null 2>&1 || getent group "$uid" >/dev/null 2>&1; do
		uid=$((uid + 1))
		skipped=$((skipped + 1))
		[ "$skipped" -lt 1000 ] || die "$EX_UID" "the 1000 UIDs after $mark all belong to accounts or groups outside Passport; Passport's range $PP_UID_MIN-$PP_UID_MAX must be Passport's alone"
	done
	[ "$uid" -le "$PP_UID_MAX" ] || die "$EX_UID" "Passport's UID range $PP_UID_MIN-$PP_UID_MAX is used up on this host"
	owned=$(uid_owns "$uid" | head -n 3 | tr '\n' ';')
	[ -z "$owned" ] || die "$EX_UID" "UID $uid, the next of Passport's range, still owns ${owned%;}: remove what it owns, or set $PP_UID_MARK to $uid to pass it by, and retry"
	# Kept before the account exists: a run that dies after useradd must
	# not hand the number out again.
	if ! mkdir -p "${PP_UID_MARK%/*}" || ! chmod 0700 "${PP_UID_MARK%/*}"; then
		die "$EX_FAILED" "cannot create ${PP_UID_MARK%/*}"
	fi
	tmp=$(tmp_in "${PP_UID_MARK%/*}")
	printf '%s\n' "$uid" >"$tmp" || die "$EX_FAILED" "cannot write $PP_UID_MARK"
	put_file "$tmp" "$PP_UID_MARK" 0600 uid-mark || true
}

step=uid
if user_exists "$user"; then
	uid=$(id -u "$user")
else
	next_uid
fi

step=layout
mkdir -p "$PP_PRINCIPALS" "$PP_CAS" "$PP_GRANTS" "$PP_LIB" || die "$EX_FAILED" "cannot create Passport's directories"
# sshd refuses principals files in group- or world-writable directories.
if ! chmod 0755 "$PP_ETC" "$PP_PRINCIPALS" "$PP_CAS" "$PP_LIB" || ! chmod 0700 "${PP_GRANTS%/*}" "$PP_GRANTS"; then
	die "$EX_FAILED" "cannot set the modes of Passport's directories"
fi
if [ ! -f "$PP_KRL" ]; then
	# sshd refuses every key when RevokedKeys names a file it cannot read.
	if ! ssh-keygen -k -f "$PP_KRL" >/dev/null 2>&1 || ! chmod 0644 "$PP_KRL"; then
		die "$EX_FAILED" "cannot create $PP_KRL"
	fi
	note_change krl
fi

# The grant record is written before the user exists, so the on-host sweep
# can clean up whatever a provision interrupted half-way leaves behind.
step='grant-record'
tmp=$(tmp_in "$PP_GRANTS")
printf 'user=%s\nrequest=%s\nrequester=%s\nexpires=%s\nserial=%s\nsudo=%s\nuid=%s\n' \
	"$user" "$request" "$requester" "$expires" "$serial" "$sudo" "$uid" >"$tmp" || die "$EX_FAILED" "cannot write the grant record"
put_file "$tmp" "$PP_GRANTS/$user" 0600 grant-record || true

step=group
if ! getent group "$PP_GROUP" >/dev/null 2>&1; then
	groupadd -r "$PP_GROUP" || die "$EX_FAILED" "groupadd $PP_GROUP failed"
	printf 'Passport created group %s; sshd holds its members to certificate logins.\n' "$PP_GROUP" >"$PP_GROUP_MARK" ||
		die "$EX_FAILED" "cannot write $PP_GROUP_MARK"
	chmod 0644 "$PP_GROUP_MARK"
	note_change group
fi

step=user
# The shadow expiry (whole days, rounded up) is a second lock behind the
# certificate's own validity: PAM, and sshd when UsePAM is off, refuse an
# expired account.
expire_day=$(((expires + 86399) / 86400))
# Where sessions are recorded the account's shell is /bin/sh, which reads no
# file of the user's when sshd runs the recorder with it (bash run by sshd
# would read ~/.bashrc first, where the user could skip the recorder); the
# session program gives the person bash.
shell=/bin/sh
[ "$recording" = off ] && [ -x /bin/bash ] && shell=/bin/bash
if ! user_exists "$user"; then
	groupadd -g "$uid" "$user" >/dev/null 2>"$work/groupadd.err" ||
		die "$EX_FAILED" "groupadd -g $uid $user: $(head -c 300 "$work/groupadd.err")"
	# Password '*' rather than useradd's '!': both make password login
	# impossible, but sshd with UsePAM no treats '!' as a locked account and
	# refuses even a certificate. '*' is never a valid hash, so it locks the
	# password and nothing else, whatever UsePAM says. No subordinate IDs:
	# files made under them in a user namespace would outlive the user, and
	# useradd would hand the range to someone else next. -l keeps the large
	# UID out of lastlog and faillog, whose size follows the UID.
	if ! useradd -m -d "$PP_HOME/$user" -s "$shell" -u "$uid" -g "$uid" -G "$PP_GROUP" -p '*' -l \
		-K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 \
		-e "$expire_day" -c "Passport $request" "$user" >/dev/null 2>"$work/useradd.err"; then
		groupdel "$user" >/dev/null 2>&1
		die "$EX_FAILED" "useradd $user: $(head -c 300 "$work/useradd.err")"
	fi
	chmod 0700 "$PP_HOME/$user" || die "$EX_FAILED" "cannot set the mode of $PP_HOME/$user"
	note_change user
else
	usermod -e "$expire_day" -s "$shell" "$user" >"$work/usermod.err" 2>&1 || die "$EX_FAILED" "usermod -e $user: $(head -c 300 "$work/usermod.err")"
fi

step=principals
tmp=$(tmp_in "$PP_PRINCIPALS")
printf '%s\n' "$user" >"$tmp" || die "$EX_FAILED" "cannot write the principals file"
put_file "$tmp" "$PP_PRINCIPALS/$user" 0644 principals || true

step='ca-key'
tmp=$(tmp_in "$PP_CAS")
cat -- "$work/ca.pub" >"$tmp" || die "$EX_FAILED" "cannot write the CA key"
put_file "$tmp" "$PP_CAS/$user.pub" 0644 ca-key || true
rebuild_trusted_cas

# install_sudoers TMP DEST WHAT installs a sudoers drop-in after visudo
# accepts it alone and with everything else.
install_sudoers() {
	chmod 0440 "$1"
	if ! visudo -cqf "$1" >/dev/null 2>&1; then
		rm -f -- "$1"
		die "$EX_SUDOERS" "visudo rejected the sudoers drop-in for $3"
	fi
	if put_file "$1" "$2" 0440 "$4"; then
		if ! visudo -cq >/dev/null 2>&1; then
			rm -f -- "$2"
			die "$EX_SUDOERS" "sudo's whole configuration is invalid with the drop-in for $3; it was removed"
		fi
	fi
}

step=sudoers
sudoers=$SUDOERS_DIR/passport-$user
if [ "$sudo" = 1 ]; then
	tmp=$(tmp_in "$SUDOERS_DIR")
	# NOPASSWD because the account has no password; !requiretty because
	# `sudo -n cmd` over a non-interactive ssh must work on hosts (older
	# RHEL) whose defaults say requiretty.
	printf 'Defaults:%s !requiretty\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" "$user" >"$tmp" ||
		die "$EX_FAILED" "cannot write the sudoers drop-in"
	install_sudoers "$tmp" "$sudoers" "$user" sudoers
	# A drop-in directory that /etc/sudoers never includes grants nothing.
	sudo -n -l -U "$user" 2>/dev/null | grep -q 'NOPASSWD: ALL' ||
		die "$EX_HOST" "sudo does not read $SUDOERS_DIR (no @includedir in /etc/sudoers?)"
elif [ -e "$sudoers" ]; then
	rm -f -- "$sudoers" || die "$EX_FAILED" "cannot remove $sudoers"
	note_change sudoers-removed
fi

# The recorder is two sudo hops, both root-owned programs. sshd's
# ForceCommand has the user run PP_RECORD as root; the sudo doing that runs
# with the user's real UID, so the user could kill it, and it logs nothing.
# PP_RECORD, now root through and through, starts a second sudo that runs
# PP_SESSION as the user with input and output logged: that sudo is root's,
# so the user can neither signal it nor read or change its log. The log
# options are Runas defaults (whatever runs as a Passport user is logged),
# the directory the run-as user's own.
step=recorder
if [ "$recording" = on ]; then
	tmp=$(tmp_in "$PP_LIB")
	session_program >"$tmp" || die "$EX_FAILED" "cannot write the session program"
	put_file "$tmp" "$PP_SESSION" 0755 session || true
	tmp=$(tmp_in "$PP_LIB")
	record_program >"$tmp" || die "$EX_FAILED" "cannot write the record program"
	put_file "$tmp" "$PP_RECORD" 0755 record || true
	tmp=$(tmp_in "$SUDOERS_DIR")
	keep='env_keep += "SSH_CLIENT SSH_CONNECTION SSH_TTY"'
	printf '%s\n' '# Managed by Passport: every session of a Passport user runs inside sudo'"'"'s I/O log.' \
		"Defaults!$PP_RECORD !requiretty, !use_pty, $keep" \
		"Defaults>%$PP_GROUP log_input, log_output, !compress_io, iolog_dir=$PP_RECORDINGS/%{runas_user}, iolog_file=%Y%m%d-%H%M%S-XXXXXX, $keep" \
		"%$PP_GROUP ALL=(root) NOPASSWD: $PP_RECORD" \
		"root ALL=(%$PP_GROUP) NOPASSWD: $PP_SESSION" >"$tmp" || die "$EX_FAILED" "cannot write $PP_RECORDER_SUDOERS"
	install_sudoers "$tmp" "$PP_RECORDER_SUDOERS" 'the recorder' recorder-sudoers
	sudo -n -l -U "$user" 2>/dev/null | grep -q "NOPASSWD: $PP_RECORD" ||
		die "$EX_HOST" "sudo does not read $SUDOERS_DIR (no @includedir in /etc/sudoers?)"
	if ! mkdir -p "$PP_RECORDINGS/$user" || ! chmod 0700 "$PP_RECORDINGS" "$PP_RECORDINGS/$user"; then
		die "$EX_FAILED" "cannot create $PP_RECORDINGS/$user"
	fi
	# What ties the user's recordings to the grant once the user and its
	# grant record are gone: every certificate serial it was given here.
	tmp=$(tmp_in "$PP_RECORDINGS/$user")
	{
		printf 'user=%s\nrequest=%s\nrequester=%s\nuid=%s\n' "$user" "$request" "$requester" "$uid"
		grep -sx 'serial=[0-9]*' "$PP_RECORDINGS/$user/grant" | grep -vx "serial=$serial"
		printf 'serial=%s\n' "$serial"
	} >"$tmp" || die "$EX_FAILED" "cannot write the recordings' grant file"
	put_file "$tmp" "$PP_RECORDINGS/$user/grant" 0600 recording-grant || true
fi

step='sweep-install'
tmp=$(tmp_in "$PP_LIB")
sweep_program >"$tmp" || die "$EX_FAILED" "cannot write the sweep program"
put_file "$tmp" "$PP_SWEEP" 0700 sweep || true
# One scheduler, whichever the host runs: a systemd timer where systemd is
# init (Amazon Linux 2023 ships no cron), else an /etc/cron.d entry. The
# sweep takes the host lock, so a second scheduler would still be safe.
sweeper=none
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	units=/etc/systemd/system
	tmp=$(tmp_in "$units")
	printf '%s\n' '[Unit]' 'Description=Passport: remove expired short-lived users' '' \
		'[Service]' 'Type=oneshot' "ExecStart=$PP_SWEEP --cron" >"$tmp" || die "$EX_FAILED" "cannot write the sweep service"
	units_changed=0
	put_file "$tmp" "$units/passport-sweep.service" 0644 sweep-service && units_changed=1
	tmp=$(tmp_in "$units")
	printf '%s\n' '[Unit]' 'Description=Passport: remove expired short-lived users every minute' '' \
		'[Timer]' 'OnBootSec=1min' 'OnUnitActiveSec=1min' 'AccuracySec=5s' '' \
		'[Install]' 'WantedBy=timers.target' >"$tmp" || die "$EX_FAILED" "cannot write the sweep timer"
	put_file "$tmp" "$units/passport-sweep.timer" 0644 sweep-timer && units_changed=1
	if [ "$units_changed" = 1 ]; then
		systemctl daemon-reload || die "$EX_FAILED" "systemctl daemon-reload failed"
	fi
	systemctl enable --now passport-sweep.timer >/dev/null 2>&1 || die "$EX_FAILED" "cannot enable passport-sweep.timer"
	sweeper=systemd
elif [ -d /etc/cron.d ]; then
	tmp=$(tmp_in /etc/cron.d)
	printf '%s\n' '# Managed by Passport: removes expired Passport users even if Passport never calls back.' \
		'SHELL=/bin/sh' 'PATH=/usr/sbin:/usr/bin:/sbin:/bin' 'MAILTO=""' \
		"* * * * * root $PP_SWEEP --cron >/dev/null 2>&1" >"$tmp" || die "$EX_FAILED" "cannot write the cron entry"
	put_file "$tmp" /etc/cron.d/passport-sweep 0644 sweep-cron || true
	sweeper=cron
else
	warn "neither systemd nor /etc/cron.d is present: expired users are removed only when Passport calls"
fi

# Passport's users are matched by group, not by name: the username prefix is
# a provider setting that may differ between requests, while membership of
# one group is a fact Passport sets itself with useradd -G and that no name
# can fake. `Match Group` ends at the end of a drop-in file, and inside it
# sshd takes the first value it sees, so the early file name (10-) keeps
# later drop-ins from overriding these lines.
step='sshd-config'
sudo_path=$(command -v sudo)
sshd_block() {
	printf '%s\n' \
		'# Managed by Passport. Passport users log in with a Passport certificate only.' \
		"Match Group $PP_GROUP" \
		'	AuthenticationMethods publickey' \
		'	AuthorizedKeysFile none' \
		'	AuthorizedKeysCommand none' \
		"	AuthorizedPrincipalsFile $PP_PRINCIPALS/%u" \
		"	TrustedUserCAKeys $PP_TRUSTED" \
		"	RevokedKeys $PP_KRL"
	# The recorder is forced for every session, a subsystem (sftp) included;
	# what it cannot see is switched off: forwarding, whose channels carry
	# no session (Passport's certificates permit none either), and ~/.ssh/rc
	# (sshd skips it under a ForceCommand already).
	[ "$recording" = on ] && printf '%s\n' \
		"	ForceCommand exec $sudo_path -n -- $PP_RECORD \"\$SSH_ORIGINAL_COMMAND\"" \
		'	PermitUserRC no' \
		'	DisableForwarding yes' \
		'	PermitTunnel no'
	return 0
}
inline_begin='# BEGIN Passport (managed; do not edit)'
inline_end='# END Passport'

# sshd_includes_dropins: does sshd_config read sshd_config.d/*.conf? Debian,
# Ubuntu, Fedora, RHEL 9 and Amazon Linux 2023 do; older ones do not, and
# the verification below catches any Include this pattern misjudges.
sshd_includes_dropins() {
	grep -Eiq '^[[:space:]]*Include[[:space:]]+"?(/etc/ssh/)?sshd_config\.d/\*(\.conf)?"?[[:space:]]*$' "$SSHD_CONFIG"
}

# write_inline_block puts the block at the end of sshd_config (a Match block
# must be last: everything after it belongs to it), followed by `Match all`
# so lines an admin appends later still apply to everyone.
write_inline_block() {
	tmp=$(tmp_in "${SSHD_CONFIG%/*}")
	cp -p -- "$SSHD_CONFIG" "$tmp" || die "$EX_FAILED" "cannot copy $SSHD_CONFIG"
	{
		# awk ends the last line with a newline if the file did not, or the
		# block's first line would be glued to it.
		sed "/^$inline_begin\$/,/^$inline_end\$/d" "$SSHD_CONFIG" | awk '{ print }'
		printf '%s\n' "$inline_begin"
		sshd_block
		printf '%s\n%s\n' 'Match all' "$inline_end"
	} >"$tmp" || die "$EX_FAILED" "cannot write $SSHD_CONFIG"
	put_file "$tmp" "$SSHD_CONFIG" 0644 sshd-config && sshd_changed=1
}

remove_inline_block() {
	grep -Fqx "$inline_begin" "$SSHD_CONFIG" || return 0
	tmp=$(tmp_in "${SSHD_CONFIG%/*}")
	cp -p -- "$SSHD_CONFIG" "$tmp" || die "$EX_FAILED" "cannot copy $SSHD_CONFIG"
	sed "/^$inline_begin\$/,/^$inline_end\$/d" "$SSHD_CONFIG" >"$tmp" || die "$EX_FAILED" "cannot write $SSHD_CONFIG"
	put_file "$tmp" "$SSHD_CONFIG" 0644 sshd-config && sshd_changed=1
}

restore_sshd() {
	cp -p -- "$work/sshd_config.orig" "$SSHD_CONFIG"
	if [ -f "$work/dropin.orig" ]; then
		cp -p -- "$work/dropin.orig" "$SSHD_DROPIN"
	else
		rm -f -- "$SSHD_DROPIN"
	fi
}

# sshd_applies: the effective configuration for this user has Passport's
# lines, and for root it does not (Passport changes nothing for others).
sshd_applies() {
	sshd -T -C "user=$user,host=passport.invalid,addr=192.0.2.1" >"$work/sshd-T" 2>&1 || return 1
	grep -qx "trustedusercakeys $PP_TRUSTED" "$work/sshd-T" &&
		grep -qx "authorizedprincipalsfile $PP_PRINCIPALS/%u" "$work/sshd-T" &&
		grep -qx "revokedkeys $PP_KRL" "$work/sshd-T" || return 1
	if [ "$recording" = on ]; then
		grep -q "^forcecommand .*$PP_RECORD" "$work/sshd-T" &&
			grep -qx 'permituserrc no' "$work/sshd-T" &&
			grep -qx 'disableforwarding yes' "$work/sshd-T" || return 1
	fi
	sshd -T -C "user=root,host=passport.invalid,addr=192.0.2.1" >"$work/sshd-T" 2>&1 || return 1
	! grep -qx "trustedusercakeys $PP_TRUSTED" "$work/sshd-T"
}

cp -p -- "$SSHD_CONFIG" "$work/sshd_config.orig" || die "$EX_HOST" "cannot read $SSHD_CONFIG"
[ -f "$SSHD_DROPIN" ] && { cp -p -- "$SSHD_DROPIN" "$work/dropin.orig" || die "$EX_FAILED" "cannot back up $SSHD_DROPIN"; }
sshd_changed=0
if [ -d "$SSHD_DROPIN_DIR" ] && sshd_includes_dropins; then
	sshd_mode=dropin
	tmp=$(tmp_in "$SSHD_DROPIN_DIR")
	sshd_block >"$tmp" || die "$EX_FAILED" "cannot write $SSHD_DROPIN"
	put_file "$tmp" "$SSHD_DROPIN" 0644 sshd-dropin && sshd_changed=1
	remove_inline_block
else
	sshd_mode=inline
	write_inline_block
fi

step='sshd-verify'
if [ "$sshd_changed" = 1 ] && ! sshd -t >"$work/sshd-t.err" 2>&1; then
	restore_sshd
	die "$EX_SSHD" "sshd -t rejected Passport's change, which was undone: $(head -c 300 "$work/sshd-t.err")"
fi
if ! sshd_applies && [ "$sshd_mode" = dropin ]; then
	warn "sshd does not apply $SSHD_DROPIN; adding Passport's block to $SSHD_CONFIG instead"
	sshd_mode=inline
	write_inline_block
	if ! sshd -t >"$work/sshd-t.err" 2>&1; then
		restore_sshd
		die "$EX_SSHD" "sshd -t rejected Passport's change, which was undone: $(head -c 300 "$work/sshd-t.err")"
	fi
fi
if ! sshd_applies; then
	restore_sshd
	die "$EX_SSHD" "sshd does not apply Passport's Match block to $user, or applies it to root; the change was undone"
fi

step='sshd-reload'
# sshd_listeners PID prints the inodes of the listening TCP sockets PID holds.
sshd_listeners() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" { print $10 }' | sort >"$work/listen"
	for fd in /proc/"$1"/fd/*; do
		link=$(readlink "$fd" 2>/dev/null) || continue
		case $link in
		'socket:['*']') link=${link#socket:[} && printf '%s\n' "${link%]}" ;;
		esac
	done | sort | comm -12 - "$work/listen"
}

# sshd reloads by re-executing itself, closing its listeners for a moment:
# wait until the new ones are up, so a login right after provision works.
await_sshd() {
	n=0
	while [ "$n" -lt 50 ]; do
		now=$(sshd_listeners "$1")
		[ -n "$now" ] && [ "$now" != "$2" ] && return 0
		pause
		n=$((n + 1))
	done
	warn "sshd (pid $1) did not listen again within 10s of the reload"
}

sshd_pid() {
	[ -s /run/sshd.pid ] || return 1
	pid=$(head -n 1 /run/sshd.pid)
	# A stale pid file must not make us signal some other process.
	valid "$pid" '[1-9][0-9]{0,9}' && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && printf '%s\n' "$pid"
}

reloaded=no
if [ "$sshd_changed" = 1 ]; then
	pid=$(sshd_pid) || pid=
	listening=
	[ -n "$pid" ] && listening=$(sshd_listeners "$pid")
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		for unit in ssh sshd; do
			if systemctl is-active --quiet "$unit.service"; then
				systemctl reload "$unit.service" || die "$EX_FAILED" "systemctl reload $unit failed"
				reloaded=$unit
				break
			fi
		done
	fi
	if [ "$reloaded" = no ] && [ -n "$pid" ]; then
		kill -HUP "$pid" || die "$EX_FAILED" "kill -HUP sshd ($pid) failed"
		reloaded=sighup
	fi
	# An sshd that is not running reads the new configuration when it starts.
	if [ "$reloaded" != no ] && [ -n "$listening" ]; then
		await_sshd "$pid" "$listening"
	fi
fi

result ok "user=$user" "changed=${changed:-none}" "sshd=$sshd_mode" "reloaded=$reloaded" "sweeper=$sweeper" "recording=$recording"
