# ---- check.sh: report whether one Passport user and its grant record exist --
# Read-only: it takes no host lock and changes nothing, so a health check can
# run beside a provision without disturbing it or waiting for it.
action=check
decode_data check "format action user request"
user=$(field user)
request=$(field request)
check_field user "$user" "$RE_USER"
check_field request "$request" "$RE_REQUEST"
need_tools id

step=inspect
# account: passport (ours), other (a real account of that name, never ours
# to touch), or absent.
account=absent
if user_exists "$user"; then
	account=other
	is_passport_user "$user" && account=passport
fi
# record: this (the grant record names this request), other (another
# request's), or absent.
record=absent
expires=0
if [ -f "$PP_GRANTS/$user" ]; then
	record=other
	if [ "$(record_field "$user" request)" = "$request" ]; then
		record=this
		expires=$(record_field "$user" expires)
		valid "$expires" "$RE_EPOCH" || expires=0
	fi
fi

result ok "user=$user" "account=$account" "record=$record" "expires=$expires"
