#!/bin/sh
# Fuzzes for real: each fuzz target for FUZZTIME (default 30s), every
# target in the repository or only those named as DIR:FuzzName (for
# example internal/identity:FuzzVerify). `make fuzz` runs them all.
#
# FUZZJOBS (default 1) targets run at once, the machine's cores shared out
# among them: each target still fuzzes for its whole FUZZTIME, and the
# run takes a FUZZJOBS-th of the time. Building each target's instrumented
# test binary is much of a short run, and overlaps too.
#
# An input that fails is written to DIR/testdata/fuzz/FuzzName/ and shown
# here. Fix the code, then commit that file: go test runs it as a seed
# from then on, so the bug cannot come back unnoticed.
set -eu
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
jobs=${FUZZJOBS:-1}

if [ "${1:-}" = --one ]; then
	# One target, its whole report printed at once so that targets
	# fuzzed side by side do not interleave.
	target=$2 workers=$3
	dir=${target%%:*}
	name=${target#*:}
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	# Minimizing a new input may take at most 10s of the budget, so the
	# fuzzing itself is not eaten up by it.
	if go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s -parallel "$workers" "./$dir" >"$log" 2>&1; then
		printf 'fuzz: %s in %s for %s: %s\n' "$name" "$dir" "$fuzztime" "$(grep '^fuzz: elapsed' "$log" | tail -n 1)"
		exit 0
	fi
	{
		printf 'fuzz: %s in %s FAILED:\n' "$name" "$dir"
		cat "$log"
		input=$(sed -n 's#.*Failing input written to \(testdata/fuzz/[^ ]*\).*#\1#p' "$log" | head -n 1)
		if [ -n "$input" ] && [ -f "$dir/$input" ]; then
			echo "fuzz: the failing input, now a seed in $dir/$input:"
			cat "$dir/$input"
		fi
	} >&2
	exit 1
fi

if [ $# -eq 0 ]; then
	# shellcheck disable=SC2046 # one DIR:FuzzName a word
	set -- $(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' internal cmd tools |
		sed 's#/[^/]*:func #:#' | sort -u)
fi
workers=$(($(nproc) / jobs))
[ "$workers" -ge 1 ] || workers=1
echo "fuzz: $# targets, $fuzztime each, $jobs at a time with $workers workers each"
if ! printf '%s\n' "$@" | xargs -P "$jobs" -I '{}' "$0" --one '{}' "$workers"; then
	echo "fuzz: a target failed (above)" >&2
	exit 1
fi
echo "fuzz: $# targets, $fuzztime each, found nothing"
