# ---- inventory.sh: list the Passport users on this host --------------------
# For the reconciler and for refreshing a request: which Passport users are
# here and what their grant records say. It changes nothing.
action=inventory
need_tools getent cut sed tr sort
make_work

step=inventory
{
	# A group of that name that Passport did not create has no Passport users.
	[ -f "$PP_GROUP_MARK" ] && getent group "$PP_GROUP" | cut -d: -f4 | tr ',' '\n'
	if [ -d "$PP_GRANTS" ]; then
		for record in "$PP_GRANTS"/*; do
			[ -f "$record" ] && printf '%s\n' "${record##*/}"
		done
	fi
} | sort -u >"$work/names"

# Each entry is name:expiry:state, state being live (account and record),
# norecord (an account in Passport's group without a record) or nouser (a
# record whose account is gone). The line stays short: Run Command truncates
# output, so past about 2000 bytes the rest is only counted.
accounts=
count=0
truncated=no
while IFS= read -r name; do
	[ -n "$name" ] || continue
	if ! valid "$name" "$RE_USER"; then
		warn "skipping $PP_GROUP member or grant record with a name Passport never creates"
		continue
	fi
	expires=$(record_field "$name" expires)
	valid "$expires" "$RE_EPOCH" || expires=none
	if is_passport_user "$name"; then
		state=live
		[ -f "$PP_GRANTS/$name" ] || state=norecord
	else
		state=nouser
	fi
	count=$((count + 1))
	if [ "${#accounts}" -lt 2000 ]; then
		accounts=${accounts:+$accounts,}$name:$expires:$state
	else
		truncated=yes
	fi
done <"$work/names"

result ok "count=$count" "accounts=${accounts:-none}" "truncated=$truncated"
