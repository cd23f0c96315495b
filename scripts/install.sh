#!/bin/sh
# Installs what Passport's demo and tests need on a fresh Debian 12 machine,
# as root. Safe to run again: it installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

need_apt=""
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt="$need_apt openssh-server"
command -v ssh >/dev/null 2>&1 || need_apt="$need_apt openssh-client"
[ -x /usr/bin/aws ] || need_apt="$need_apt awscli"
# boto3 for Debian's python3: the lab's env.sh is tested with it.
/usr/bin/python3 -c 'import boto3' 2>/dev/null || need_apt="$need_apt python3-boto3"
command -v shellcheck >/dev/null 2>&1 || need_apt="$need_apt shellcheck"
command -v sudo >/dev/null 2>&1 || need_apt="$need_apt sudo"
command -v rsync >/dev/null 2>&1 || need_apt="$need_apt rsync"
command -v unshare >/dev/null 2>&1 || need_apt="$need_apt util-linux"
command -v pkill >/dev/null 2>&1 || need_apt="$need_apt procps"
# Lab hosts run cron and atd, so the tests can leave jobs behind as a
# granted user would and prove revocation removes them.
[ -x /usr/sbin/cron ] || need_apt="$need_apt cron"
[ -x /usr/sbin/atd ] || need_apt="$need_apt at"
# A real browser for the SAML sign-in test, driven by playwright-core.
[ -x /usr/bin/chromium ] || need_apt="$need_apt chromium"
command -v node >/dev/null 2>&1 || need_apt="$need_apt nodejs"
command -v npm >/dev/null 2>&1 || need_apt="$need_apt npm"
if [ -n "$need_apt" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install: missing Debian packages:$need_apt; run this script as root to install them" >&2
		exit 1
	fi
	echo "install: apt-get install$need_apt"
	apt-get update -qq
	# shellcheck disable=SC2086 # the package list is meant to split
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_apt >/dev/null
fi

# dynalite: a DynamoDB-compatible server the ledger's tests run against,
# beside moto_server when that is installed.
if ! command -v dynalite >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	echo "install: npm install -g dynalite"
	npm install -g --silent --no-fund --no-audit dynalite@4.0.0 >/dev/null
fi

# playwright-core drives Debian's Chromium; it never downloads a browser.
if [ ! -d .tools/node/node_modules/playwright-core ]; then
	echo "install: npm install playwright-core into .tools/node"
	npm install --silent --no-fund --no-audit --prefix .tools/node playwright-core@1.65.1 >/dev/null
fi

echo "install: Go modules"
go mod download

# The Terraform CLI is not part of the base image. Without a registry to
# download it from, build the last MPL release from the module proxy.
# 1.5.7 has no ephemeral resources; tests that need them skip below 1.10.
if ! command -v terraform >/dev/null 2>&1; then
	echo "install: building the Terraform CLI 1.5.7 (about 5 minutes, once)"
	go install github.com/hashicorp/terraform@v1.5.7
fi
echo "install: done"
