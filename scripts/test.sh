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

# Benchmarks measure the speed targets (BENCHMARKS.md); one iteration of
# each here proves they still run, since a change can break a benchmark
# that no test exercises. The emulator-backed ledger variants take minutes
# and are left to BENCHMARKS.md's commands.
echo "test: every benchmark runs once"
go test -count=1 -timeout 10m -run '^$' -benchtime 1x \
	-bench 'Throughput|Download|RoundTrip|Sign|Authorize|Verify|FanOut1000|Grant100|Provision|SignedCall|SendCommandFanOut|^BenchmarkPass$|DuePass/sqlite' \
	./internal/ssmsession/ ./internal/sshca/ ./internal/policy/ ./internal/identity/ ./internal/fleet/ \
	./internal/access/ ./internal/hostscript/ ./internal/lab/awsjson/ ./internal/lab/ssm/ ./internal/reconcile/ ./internal/ledger/ \
	./internal/awsidentity/
