#!/bin/sh
# Generates the provider's registry docs from templates/, examples/ and the
# schemas. "check" regenerates into a scratch copy and fails when the
# committed docs/ differ.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-generate}
case $mode in
generate)
	go tool tfplugindocs generate --provider-name passport --rendered-provider-name Passport
	;;
check)
	# tfplugindocs takes the output directory relative to the provider.
	out=.docs-check
	trap 'rm -rf "$out"' EXIT
	go tool tfplugindocs generate --provider-name passport --rendered-provider-name Passport --rendered-website-dir "$out" >/dev/null
	# The service's API document is written by hand, not generated; its
	# own test (internal/service) holds it to the service.
	if ! diff -ru -x service-api.yaml docs "$out"; then
		echo "docs/ is out of date: run make generate and commit the result" >&2
		exit 1
	fi
	;;
*)
	echo "usage: $0 [generate|check]" >&2
	exit 2
	;;
esac
