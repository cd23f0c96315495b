#!/bin/sh
# Runs every Passport test: unit tests, lab tests on real sandbox hosts,
# and Terraform acceptance tests with the real terraform CLI. Lab and
# acceptance tests need root (CI runs as root); without it they skip and say
# why.
set -eu
cd "$(dirname "$0")/.."
./scripts/install.sh
PATH="$PATH:$(go env GOPATH)/bin"
export PATH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The environment may point TF_CLI_CONFIG_FILE at a file that does not
# exist; terraform must read an empty configuration of ours instead.
: >"$work/terraformrc"
export TF_CLI_CONFIG_FILE="$work/terraformrc"
export TF_ACC=1
export TF_ACC_TEMP_DIR="$work"
export CHECKPOINT_DISABLE=1
PLAYWRIGHT_CORE="$(pwd)/.tools/node/node_modules/playwright-core"
export PLAYWRIGHT_CORE

echo "test: static checks"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "test: gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "test: docs are what make generate produces"
./scripts/docs.sh check

echo "test: go test"
go test -count=1 -timeout 20m ./...
