#!/bin/sh
# Runs every Passport test: unit tests, lab tests on real sandbox hosts, and
# the acceptance tests with the real terraform CLI and again with OpenTofu;
# the concurrent packages under the race detector; the security fuzz
# targets for 30 s each; every benchmark once. Run as root (CI does):
# install.sh stops the run when the lab cannot work here.
#
# Skips fail the run. Every test that skips is listed with its reason, and
# the run fails unless scripts/allowed-skips names the test and says why.
# A test that must skip in CI goes there, with a comment; better, make it
# run. tools/testreport reads go test's events and says what ran.
set -eu
cd "$(dirname "$0")/.."
./scripts/install.sh
# shellcheck source=scripts/tools.env
. ./scripts/tools.env
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
shellcheck -s sh -x scripts/*.sh

echo "test: docs are what make generate produces"
./scripts/docs.sh check

go build -o "$work/testreport" ./tools/testreport
# report runs go test under the allow-list; strict allows no skip at all.
strict() { "$work/testreport" -tally "$work/tally" "$@"; }
report() { strict -allow scripts/allowed-skips "$@"; }

echo "test: go test (acceptance tests with $(terraform version | head -n 1))"
report -stale -- go test -json -count=1 -timeout 25m ./...

# The provider's acceptance tests again, with OpenTofu as the CLI, which
# has ephemeral resources and write-only attributes. OpenTofu calls a
# provider with no source registry.opentofu.org/hashicorp/passport; the
# in-process provider must be offered under that address.
echo "test: acceptance tests with OpenTofu $TOFU_VERSION"
strict -- env TF_ACC_TERRAFORM_PATH="$TOFU" TF_ACC_PROVIDER_HOST=registry.opentofu.org \
	go test -json -count=1 -timeout 20m -run '^TestAcc' ./internal/provider/

# The packages whose code runs concurrently, under the race detector: all
# of their tests but the two 1 GiB transfers (minutes long with -race; they
# ran above without it), and of the reconciler and the CLI the tests where
# passes, sessions and commands run at once.
echo "test: race detector"
report -- go test -json -race -count=1 -timeout 30m -skip 'TestOneGiBIntact|TestTransferThroughRecycledWebsockets' \
	./internal/ssmsession/ ./internal/fleet/ ./internal/ledger/ ./internal/lab/session/ ./internal/connect/ ./internal/server/ ./internal/notify/
report -- go test -json -race -count=1 -timeout 30m \
	-run 'TestTwoReconcilers|TestSweepRacing|TestHealthz|TestConnect|TestLab|TestReconcilerKilled|TestReconcileDaemon|TestShell' \
	./internal/reconcile/ ./cmd/passport/

# The fuzz targets that guard what others control, 30 s each: SAML
# responses, the data block the root programs decode and the result lines
# hosts print, data-channel frames, audit exports, the session recordings
# hosts leave (sudo I/O logs) and hand over (the collect bundle), and what callers send
# the Passport service (bodies, credentials, the IdP's form at the ACS).
echo "test: fuzzing"
FUZZTIME=30s FUZZJOBS=2 ./scripts/fuzz.sh internal/identity:FuzzVerify \
	internal/hostscript:FuzzHostDecodesData internal/hostscript:FuzzParseResult \
	internal/ssmsession:FuzzDecode internal/ledger:FuzzVerifyExport internal/recording:FuzzIOLog internal/collect:FuzzReadBundle internal/collect:FuzzReadEvents \
	internal/server:FuzzRead internal/service:FuzzRequestBodies \
	internal/service:FuzzCredentials internal/service:FuzzACS internal/portal:FuzzPagesShowValuesAsText

# Every benchmark once: a change can break a benchmark that no test runs.
# Their figures come from BENCHMARKS.md's commands; the emulator-backed
# ledger variants take minutes and are left to those.
echo "test: every benchmark runs once"
report -- go test -json -count=1 -timeout 10m -run '^$' -benchtime 1x \
	-bench 'Throughput|Download|RoundTrip|RecorderOutput|Sign|Authorize|ApprovalDecision|Verify|FanOut1000|Grant100|Provision|SignedCall|SendCommandFanOut|^BenchmarkPass$|DuePass/sqlite|GrantThroughTheService|ConcurrentReads|TimeToAccess|PortalPages' \
	./internal/ssmsession/ ./internal/sshca/ ./internal/policy/ ./internal/identity/ ./internal/fleet/ \
	./internal/access/ ./internal/hostscript/ ./internal/lab/awsjson/ ./internal/lab/ssm/ ./internal/reconcile/ ./internal/ledger/ \
	./internal/awsidentity/ ./internal/service/ ./internal/portal/

"$work/testreport" -total "$work/tally"
