# ---- revoke.sh: remove one Passport user and revoke its certificate --------
# A host that is already clean is fine: every step tolerates a missing piece.
action=revoke
decode_data revoke "format action user serial ca_type ca_key"
user=$(field user)
serial=$(field serial)
check_field user "$user" "$RE_USER"
check_serial "$serial"
need_tools ssh-keygen userdel usermod groupdel getent id pkill pgrep find sort awk cut
if [ "$serial" != 0 ]; then
	check_ca_key "$(field ca_type)" "$(field ca_key)" "$work/ca.pub"
else
	[ -z "$(field ca_type)$(field ca_key)" ] || die "$EX_DATA" "fields ca_type and ca_key must be empty without a serial"
fi
lock_host

step='remove-user'
present=no
if user_exists "$user" || [ -f "$PP_GRANTS/$user" ] || [ -f "$PP_PRINCIPALS/$user" ]; then
	present=yes
fi
remove_user "$user"
rc=$?
case $rc in
0) ;;
"$EX_CONFLICT") die "$EX_CONFLICT" "user $user exists but is not a Passport user; nothing was removed" ;;
*) die "$rc" "could not remove user $user completely" ;;
esac
[ -d "$PP_ETC" ] && rebuild_trusted_cas

# The serial goes into the KRL even when the user was already gone: the
# certificate must stay refused if a user of that name ever appears again.
step='revoke-certificate'
revoked=none
if [ "$serial" != 0 ]; then
	if ! mkdir -p "$PP_ETC" || ! chmod 0755 "$PP_ETC"; then
		die "$EX_FAILED" "cannot create $PP_ETC"
	fi
	revoke_serial "$serial" "$work/ca.pub" || die "$EX_FAILED" "could not add serial $serial to $PP_KRL"
	revoked=$serial
fi

result ok "user=$user" "removed=$present" "revoked_serial=$revoked"
