#!/bin/sh
# Installs what Passport's demo and tests need on a fresh Debian 12 machine,
# as root. Safe to run again: it installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

# The lab's sandbox hosts, and so most tests, need root and the kernel's
# overlay filesystem. Without them those tests could only skip, so the run
# stops here and says what is missing.
if [ "$(id -u)" != 0 ]; then
	echo "install: run this as root: the lab's sandbox hosts need mount and PID namespaces, and packages may need installing" >&2
	exit 1
fi
if ! grep -qw overlay /proc/filesystems; then
	modprobe overlay 2>/dev/null || true
	if ! grep -qw overlay /proc/filesystems; then
		echo "install: the kernel has no overlay filesystem, which the lab's sandbox hosts are made of;" \
			"load it with 'modprobe overlay' (package kmod) on the machine itself, or use a machine whose kernel has it" >&2
		exit 1
	fi
fi

need_apt=""
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt="$need_apt openssh-server"
command -v ssh >/dev/null 2>&1 || need_apt="$need_apt openssh-client"
[ -x /usr/bin/aws ] || need_apt="$need_apt awscli"
# boto3 for Debian's python3: the lab's env.sh is tested with it.
/usr/bin/python3 -c 'import boto3' 2>/dev/null || need_apt="$need_apt python3-boto3"
command -v shellcheck >/dev/null 2>&1 || need_apt="$need_apt shellcheck"
command -v sudo >/dev/null 2>&1 || need_apt="$need_apt sudo"
command -v rsync >/dev/null 2>&1 || need_apt="$need_apt rsync"
# The recorder's tests prove scp, sftp, rsync and Ansible still work.
command -v sftp >/dev/null 2>&1 || need_apt="$need_apt openssh-client"
[ -x /usr/lib/openssh/sftp-server ] || need_apt="$need_apt openssh-sftp-server"
command -v ansible >/dev/null 2>&1 || need_apt="$need_apt ansible-core"
command -v unshare >/dev/null 2>&1 || need_apt="$need_apt util-linux"
command -v pkill >/dev/null 2>&1 || need_apt="$need_apt procps"
# Lab hosts hand recordings over compressed with zstd, as hosts that have
# it do (the Debian releases built below have none, and use gzip).
command -v zstd >/dev/null 2>&1 || need_apt="$need_apt zstd"
# The demo checks that the portal answers a browser with curl.
command -v curl >/dev/null 2>&1 || need_apt="$need_apt curl"
# asciinema plays the asciicast that passport sessions export, in the tests.
command -v asciinema >/dev/null 2>&1 || need_apt="$need_apt asciinema"
# Lab hosts run cron and atd, so the tests can leave jobs behind as a
# granted user would and prove revocation removes them.
[ -x /usr/sbin/cron ] || need_apt="$need_apt cron"
[ -x /usr/sbin/atd ] || need_apt="$need_apt at"
# systemd-analyze verifies the sweep's timer units (systemd is not run).
command -v systemd-analyze >/dev/null 2>&1 || need_apt="$need_apt systemd"
# debootstrap builds the Debian releases lab hosts can run (below).
command -v debootstrap >/dev/null 2>&1 || need_apt="$need_apt debootstrap"
# A real browser for the SAML sign-in test, driven by playwright-core.
[ -x /usr/bin/chromium ] || need_apt="$need_apt chromium"
command -v node >/dev/null 2>&1 || need_apt="$need_apt nodejs"
command -v npm >/dev/null 2>&1 || need_apt="$need_apt npm"
if [ -n "$need_apt" ]; then
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

# tree-sitter-powershell's WebAssembly grammar, run by web-tree-sitter in
# Node: the Windows programs' tests parse every shipped .ps1 with it.
# --ignore-scripts: the WebAssembly build needs no native addon compiled.
if [ ! -f .tools/node/node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm ] ||
	! grep -q '"version": "0.26.13"' .tools/node/node_modules/web-tree-sitter/package.json 2>/dev/null; then
	echo "install: npm install tree-sitter-powershell and web-tree-sitter into .tools/node"
	npm install --silent --no-fund --no-audit --ignore-scripts --prefix .tools/node \
		tree-sitter-powershell@0.26.4 web-tree-sitter@0.26.13 >/dev/null
fi

echo "install: Go modules"
go mod download

# Lab hosts of other Debian releases (passport lab up --release, and the
# tests that run the host programs on each) boot from root filesystems that
# debootstrap builds once, in parallel, into the cache outside the clone:
# about 4 minutes the first time, nothing after. It waits mostly on the
# network and the disk, so it runs in the background while the CLIs below
# compile.
# shellcheck source=scripts/tools.env
. ./scripts/tools.env
rootfs_pid=
built=yes
for release in bullseye bookworm trixie; do
	[ -f "$PASSPORT_CACHE/rootfs/$release/etc/passport-rootfs" ] || built=no
done
if [ "$built" = no ]; then
	echo "install: building Debian 11, 12 and 13 for lab hosts into $PASSPORT_CACHE/rootfs in the background (about 4 minutes, once)"
	rootfs_log=$(mktemp)
	go run ./cmd/passport lab rootfs build --cache "$PASSPORT_CACHE/rootfs" --release bullseye,bookworm,trixie >"$rootfs_log" 2>&1 &
	rootfs_pid=$!
fi

# The Terraform CLI is not part of the base image. Without a registry to
# download it from, build the last MPL release from the module proxy.
# 1.5.7 has no ephemeral resources; tests that need them skip below 1.10.
if ! command -v terraform >/dev/null 2>&1; then
	echo "install: building the Terraform CLI 1.5.7 (about 5 minutes, once)"
	go install github.com/hashicorp/terraform@v1.5.7
fi
# OpenTofu runs the provider's acceptance tests a second time, and is the
# CLI under which the ephemeral resource's test runs (Terraform 1.5.7 has no
# ephemeral resources). `go install` refuses its module for a replace
# directive, so it is built from a writable copy of the module. The binary
# is kept outside the clone, so later runs and fresh clones reuse it.
if [ ! -x "$TOFU" ]; then
	echo "install: building OpenTofu $TOFU_VERSION into $TOFU (about 4 minutes, once)"
	build=$(mktemp -d)
	module=$(cd "$build" && go mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$module" ]; then
		echo "install: go mod download found no OpenTofu $TOFU_VERSION module" >&2
		exit 1
	fi
	cp -R "$module" "$build/opentofu"
	chmod -R u+w "$build/opentofu"
	mkdir -p "$(dirname "$TOFU")"
	if ! (cd "$build/opentofu" && go build -o "$TOFU.partial" ./cmd/tofu) >"$build/log" 2>&1; then
		cat "$build/log" >&2
		echo "install: building OpenTofu $TOFU_VERSION failed (above)" >&2
		exit 1
	fi
	mv "$TOFU.partial" "$TOFU"
	rm -rf "$build"
fi
if [ -n "$rootfs_pid" ]; then
	if ! wait "$rootfs_pid"; then
		cat "$rootfs_log" >&2
		echo "install: building the Debian root filesystems failed (above)" >&2
		exit 1
	fi
	rm -f "$rootfs_log"
fi
echo "install: done"
