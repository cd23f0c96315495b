# ---- collect.sh: hand the session recordings over ---------------------------
# Run with the command's output going to S3 (OutputS3BucketName): stdout is
# the recordings, a tar of <user>/grant and <user>/<session>/<sudo's I/O
# log files> compressed with zstd -1 (gzip -1 on a host without zstd),
# which the agent writes to the bucket whole with the instance's role.
# Everything else, the result line included, goes to stderr, which is all
# Passport reads from the API.
#
# Sessions Passport has already stored whole (field prune, <user>/<session>
# items) are deleted first; a session still being written never is. The
# directory of a user who is gone goes once no session is left in it. The
# others stay until a later collection has stored them: a collection that
# fails loses nothing.
exec 3>&1 1>&2
action=collect
decode_data collect "format action users prune"
users=$(field users)
prune=$(field prune)
RE_SESSION='[0-9]{8}-[0-9]{6}-[A-Za-z0-9]{6}'
# Lists are ':'-separated; the data block admits no space.
for name in $(printf '%s' "$users" | tr ':' ' '); do
	check_field users "$name" "$RE_USER"
done
for item in $(printf '%s' "$prune" | tr ':' ' '); do
	check_field prune "$item" "$RE_USER/$RE_SESSION"
done
need_tools tar find stat
# zstd -1 shrinks terminal output as much as gzip -1 does at a fraction of
# its time (gzip -1 spends seconds on 50 MB that hardly compresses);
# Passport reads either.
if command -v zstd >/dev/null 2>&1; then
	compress="zstd -1 -q -c"
else
	need_tools gzip
	compress="gzip -1 -c"
fi
lock_host

# finished DIR: sudo clears the write bits of a session's timing file when
# the session ends (sudoreplay reads it so too); until then it is running.
finished() {
	[ -f "$1/timing" ] || return 1
	case $(stat -c %A "$1/timing") in
	*w*) return 1 ;;
	esac
	return 0
}

step=prune
pruned=0
for item in $(printf '%s' "$prune" | tr ':' ' '); do
	dir=$PP_RECORDINGS/$item
	if [ -d "$dir" ] && [ ! -L "$dir" ] && finished "$dir"; then
		rm -rf -- "$dir" || die "$EX_FAILED" "cannot remove $dir"
		pruned=$((pruned + 1))
	fi
done

step=collect
if [ -z "$users" ]; then
	for dir in "$PP_RECORDINGS"/*; do
		[ -d "$dir" ] && users="$users:${dir##*/}"
	done
fi
members=
count=0
sessions=0
for name in $(printf '%s' "$users" | tr ':' ' '); do
	valid "$name" "$RE_USER" || continue
	dir=$PP_RECORDINGS/$name
	if [ ! -d "$dir" ] || [ -L "$dir" ]; then
		continue
	fi
	n=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | grep -Ec "/$RE_SESSION\$")
	if [ "$n" = 0 ] && ! user_exists "$name"; then
		rm -rf -- "$dir" || die "$EX_FAILED" "cannot remove $dir"
		continue
	fi
	members="$members $name"
	count=$((count + 1))
	sessions=$((sessions + n))
done

# The names in members were checked against RE_USER: word splitting is safe.
# shellcheck disable=SC2086
if [ -n "$members" ]; then
	# A session being written changes under tar, which says so and goes
	# on: what it read is collected, the rest next time.
	tar -C "$PP_RECORDINGS" -cf - -- $members 2>"$work/tar.err" | $compress >&3 ||
		die "$EX_FAILED" "writing the recordings to stdout failed"
	[ -s "$work/tar.err" ] && warn "tar: $(head -c 300 "$work/tar.err")"
fi
result ok "recorded=$count" "sessions=$sessions" "pruned=$pruned"
