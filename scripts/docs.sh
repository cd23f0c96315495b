#!/bin/sh
# Generates the provider's registry docs from templates/, examples/ and the
# schemas. "check" regenerates into a scratch copy and fails when the
# committed docs/ differ.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-generate}

# tfplugindocs renders from the provider's schema, which it asks a
# Terraform CLI for. Terraform before 1.10, which install.sh builds where
# none is installed, knows no ephemeral resources, so it would fail on
# theirs; OpenTofu (install.sh builds it too) does. So the schema always
# comes from OpenTofu, through dev_overrides (nothing to download), under
# the name tfplugindocs looks it up by.
# shellcheck source=scripts/tools.env
. ./scripts/tools.env
schema=$(mktemp -d)
trap 'rm -rf "$schema"' EXIT
go build -o "$schema/bin/terraform-provider-passport" .
cat >"$schema/tofurc" <<RC
provider_installation {
  dev_overrides {
    "passport-access/passport" = "$schema/bin"
  }
  direct {}
}
RC
printf 'terraform {\n  required_providers {\n    passport = { source = "passport-access/passport" }\n  }\n}\n' >"$schema/main.tf"
TF_CLI_CONFIG_FILE="$schema/tofurc" "$TOFU" -chdir="$schema" providers schema -json 2>/dev/null |
	sed 's#"registry.opentofu.org/passport-access/passport"#"passport"#' >"$schema/schema.json"
if ! grep -q '"passport":' "$schema/schema.json"; then
	echo "docs: OpenTofu ($TOFU) gave no schema for the provider: run scripts/install.sh" >&2
	exit 1
fi
docs() { go tool tfplugindocs generate --provider-name passport --rendered-provider-name Passport --providers-schema "$schema/schema.json" "$@"; }

case $mode in
generate)
	docs
	;;
check)
	# tfplugindocs takes the output directory relative to the provider.
	out=.docs-check
	trap 'rm -rf "$out" "$schema"' EXIT
	docs --rendered-website-dir "$out" >/dev/null
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
