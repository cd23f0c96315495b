#!/bin/sh
# Fuzzes for real: each fuzz target in turn for FUZZTIME (default 30s),
# every target in the repository or only those named as DIR:FuzzName
# (for example internal/identity:FuzzVerify). `make fuzz` runs them all.
#
# An input that fails is written to DIR/testdata/fuzz/FuzzName/ and shown
# here. Fix the code, then commit that file: go test runs it as a seed
# from then on, so the bug cannot come back unnoticed.
set -eu
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}

if [ $# -eq 0 ]; then
	# shellcheck disable=SC2046 # one DIR:FuzzName a word
	set -- $(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' internal cmd tools |
		sed 's#/[^/]*:func #:#' | sort -u)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=""
for target in "$@"; do
	dir=${target%%:*}
	name=${target#*:}
	echo "fuzz: $name in $dir for $fuzztime"
	# Minimizing a new input may take at most 10s of the budget, so the
	# fuzzing itself is not eaten up by it.
	if go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s "./$dir" >"$log" 2>&1; then
		grep '^fuzz: elapsed' "$log" | tail -n 1
		continue
	fi
	cat "$log"
	failed="$failed $target"
	input=$(sed -n 's#.*Failing input written to \(testdata/fuzz/[^ ]*\).*#\1#p' "$log" | head -n 1)
	if [ -n "$input" ] && [ -f "$dir/$input" ]; then
		echo "fuzz: the failing input, now a seed in $dir/$input:"
		cat "$dir/$input"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
echo "fuzz: $# targets, $fuzztime each, found nothing"
