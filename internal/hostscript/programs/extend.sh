# ---- extend.sh: move the expiry of one Passport user ------------------------
# The new certificate is the client's business; the host only needs to know
# when its sweep may remove the user. A shorter window works the same way.
action=extend
decode_data extend "format action user expires"
user=$(field user)
expires=$(field expires)
check_field user "$user" "$RE_USER"
check_field expires "$expires" "$RE_EPOCH"
need_tools usermod id cmp
lock_host

step='user-check'
if user_exists "$user"; then
	is_passport_user "$user" || die "$EX_CONFLICT" "user $user exists but is not a Passport user"
else
	die "$EX_NOTFOUND" "there is no Passport user $user on this host; provision it again"
fi
[ -f "$PP_GRANTS/$user" ] || die "$EX_NOTFOUND" "user $user has no grant record on this host; provision it again"

step='grant-record'
tmp=$(tmp_in "$PP_GRANTS")
sed "s/^expires=.*/expires=$expires/" "$PP_GRANTS/$user" >"$tmp" || die "$EX_FAILED" "cannot write the grant record"
put_file "$tmp" "$PP_GRANTS/$user" 0600 grant-record || true

step='account-expiry'
usermod -e "$(((expires + 86399) / 86400))" "$user" >"$work/usermod.err" 2>&1 ||
	die "$EX_FAILED" "usermod -e $user: $(head -c 300 "$work/usermod.err")"

result ok "user=$user" "expires=$expires" "changed=${changed:-none}"
