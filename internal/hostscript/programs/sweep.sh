# ---- sweep.sh: remove every Passport user whose grant has expired ----------
# Installed by provision as a scheduled job, so expired users go even if
# Passport never calls this host again. It reads only grant records.
action=sweep
cron_mode=0
[ "${1:-}" = --cron ] && cron_mode=1
need_tools ssh-keygen userdel usermod groupdel getent id pkill pgrep find sort awk cut date
make_work
[ -d "$PP_GRANTS" ] || { result ok removed=0 kept=0 failed=0; exit 0; }
lock_host

step=sweep
now=$(date +%s)
removed=
kept=0
failed=0
for record in "$PP_GRANTS"/*; do
	[ -f "$record" ] || continue
	user=${record##*/}
	expires=$(record_field "$user" expires)
	if ! valid "$user" "$RE_USER" || ! valid "$expires" "$RE_EPOCH"; then
		warn "grant record $record is malformed; left for a person to inspect"
		failed=$((failed + 1))
		continue
	fi
	if [ "$expires" -gt "$now" ]; then
		kept=$((kept + 1))
		continue
	fi
	# Revoke first, while the user's CA key is still on disk: a window that
	# was shortened leaves a certificate that outlives it.
	serial=$(record_field "$user" serial)
	if valid "$serial" '[1-9][0-9]{0,19}' && [ -f "$PP_CAS/$user.pub" ]; then
		revoke_serial "$serial" "$PP_CAS/$user.pub" || warn "could not revoke serial $serial of $user"
	fi
	if remove_user "$user"; then
		removed=${removed:+$removed,}$user
	else
		failed=$((failed + 1))
	fi
done
[ -n "$removed" ] && rebuild_trusted_cas

count=0
if [ -n "$removed" ]; then
	count=$(printf '%s\n' "$removed" | tr ',' '\n' | wc -l)
fi
# Keep the result line short (Run Command truncates output): name at most
# the first 40 users and give the count.
names=$(printf '%s\n' "$removed" | cut -d, -f1-40)
if [ "$cron_mode" = 1 ] && { [ "$count" -gt 0 ] || [ "$failed" -gt 0 ]; } && command -v logger >/dev/null 2>&1; then
	logger -t passport-sweep "removed=$count users=${names:-none} failed=$failed"
fi
if [ "$failed" -gt 0 ]; then
	step=sweep
	die "$EX_FAILED" "$failed grant(s) could not be swept (removed: ${names:-none})"
fi
result ok "removed=$count" "users=${names:-none}" "kept=$kept" "failed=0"
