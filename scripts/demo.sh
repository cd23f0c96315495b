#!/bin/sh
# The Passport demo, on the local lab, offline: three sandbox Linux hosts
# and a lab Windows host behind a local AWS, and the Passport service,
# which alone may touch them. A requester whose AWS identity may call
# nothing on the access path is refused when it tries Run Command itself,
# then `terraform apply` through the service grants time-boxed access (a
# KMS-signed SSH certificate on Linux, a password the server made on
# Windows), both are used through OpenSSH and Session Manager tunnels the
# service opens, and `terraform destroy` takes it all away again. Run as
# root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
./scripts/install.sh
PATH="$PATH:$(go env GOPATH)/bin"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# wait_for PID ERRFILE WHAT TEST...: waits up to 60 s for the command TEST
# to succeed while the background process PID lives; otherwise shows its
# stderr and stops the demo saying WHAT did not happen.
wait_for() {
	pid=$1 errfile=$2 what=$3
	shift 3
	i=0
	until "$@"; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$errfile" >&2
			echo "demo: $what" >&2
			exit 1
		fi
		sleep 0.1
	done
}

say "Building the provider and the passport CLI"
make -s build
demo=$(mktemp -d /tmp/passport-demo.XXXXXX)
lab="$demo/lab"

cleanup() {
	if [ -n "${rdp_pid:-}" ] && kill -0 "$rdp_pid" 2>/dev/null; then
		kill -INT "$rdp_pid"
		wait "$rdp_pid" || true
	fi
	if [ -n "${lab_pid:-}" ] && kill -0 "$lab_pid" 2>/dev/null; then
		kill -INT "$lab_pid"
		wait "$lab_pid" || true
	fi
	"$root/bin/passport" lab down --dir "$lab" >/dev/null 2>&1 || true
	rm -rf "$demo"
}
trap cleanup EXIT INT TERM

say "Starting the lab: passport lab up --hosts 3 --windows 1"
"$root/bin/passport" lab up --hosts 3 --windows 1 --dir "$lab" >"$demo/lab.out" 2>"$demo/lab.err" &
lab_pid=$!
wait_for "$lab_pid" "$demo/lab.err" "the lab did not start" test -f "$lab/env.sh"
sleep 0.2
cat "$demo/lab.out"
# shellcheck disable=SC1091 # written by the lab at run time
. "$lab/env.sh"

say "The lab's servers, through the real AWS CLI as the lab's operator: aws ssm describe-instance-information"
# Debian's AWS CLI (2.9) predates AWS_ENDPOINT_URL, so it gets the flag.
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" ssm describe-instance-information \
	--query 'InstanceInformationList[].[InstanceId,ComputerName,IPAddress,PingStatus,PlatformType]' --output table
staging=$(/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" ssm describe-instance-information \
	--filters Key=tag:Env,Values=staging --query 'InstanceInformationList[0].InstanceId' --output text)

say "From here on, the requester: an AWS identity that may call nothing on the access path"
export AWS_ACCESS_KEY_ID="$PASSPORT_LAB_REQUESTER_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$PASSPORT_LAB_REQUESTER_SECRET_ACCESS_KEY"
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" sts get-caller-identity --query Arn --output text
echo "Going around Passport, straight to Run Command, is refused:"
if /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" ssm send-command --document-name AWS-RunShellScript \
	--instance-ids "$staging" --parameters 'commands=["useradd mallory"]' >"$demo/denied.out" 2>"$demo/denied.err"; then
	echo "demo: the requester ran a command on $staging without Passport" >&2
	exit 1
fi
sed 's/^\s*//' "$demo/denied.err"

# The provider from bin/, without a registry: dev_overrides skips
# `terraform init`, which would need one.
cat >"$demo/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "passport-access/passport" = "$root/bin"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE="$demo/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
cp examples/demo/main.tf "$demo/"
tf() { terraform -chdir="$demo" "$@"; }
# tf_show runs a terraform command and shows its output without the
# dev_overrides banner (all of it, or with "brief" only the progress
# lines); it stops the demo when terraform fails.
tf_show() {
	brief=$1
	shift
	if tf "$@" -no-color >"$demo/tf.log" 2>&1; then
		status=0
	else
		status=$?
	fi
	sed '/Provider development overrides are in effect/,/^releases\.$/d' "$demo/tf.log" >"$demo/tf.out"
	if [ "$brief" = brief ] && [ "$status" = 0 ]; then
		grep -E '^[a-z_.]+: |complete!' "$demo/tf.out"
	else
		cat "$demo/tf.out"
	fi
	if [ "$status" != 0 ]; then
		echo "demo: terraform $1 failed" >&2
		exit "$status"
	fi
}

say "terraform apply through the Passport service ($PASSPORT_SERVER): one hour of sudo access to every staging server, Linux and Windows"
echo "The provider signs in to the service with the requester's AWS identity; the service asks the"
echo "lab's policy, records the grant, signs with its KMS CA and sends Passport's own SSM documents."
tf_show full apply -auto-approve
user=$(tf output -raw username)
id=$(tf output -raw id)
tf output -raw private_key >"$demo/$id.key"
tf output -raw certificate >"$demo/$id-cert.pub"
chmod 600 "$demo/$id.key"
echo "username: $user, expires at $(tf output -raw expires_at)"
ssh-keygen -L -f "$demo/$id-cert.pub" | sed -n '2,12p'

addresses=$(tf output -json linux_addresses | tr -d '{}"' | tr ',' '\n' | cut -d: -f2)
ssh_opts="-i $demo/$id.key -o CertificateFile=$demo/$id-cert.pub -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes"

say "Logging in with OpenSSH and the issued certificate"
for a in $addresses; do
	# shellcheck disable=SC2086,SC2016 # ssh_opts is a list of options; $() runs on the server
	ssh $ssh_opts "$user@$a" 'echo "$(whoami)@$(hostname): $(sudo -n id -un) via sudo"'
done

say "The same, through a Session Manager tunnel the service opens: passport request import, then passport ssh"
export PASSPORT_CONFIG_DIR="$demo/config"
"$root/bin/passport" request import --dir "$demo"
first=$(tf output -json linux_addresses | tr -d '{}"' | tr ',' '\n' | head -n 1 | cut -d: -f1)
# shellcheck disable=SC2016 # expanded on the server, not here
"$root/bin/passport" ssh "$first" -- 'echo "$(whoami)@$(hostname), through the tunnel"'

say "Remote Desktop to the Windows server: passport rdp forwards its port 3389 through a tunnel the service opens"
windows=$(tf output -json windows_targets | tr -d '[]"' | cut -d, -f1)
"$root/bin/passport" rdp "$windows" >"$demo/rdp.out" 2>"$demo/rdp.err" &
rdp_pid=$!
wait_for "$rdp_pid" "$demo/rdp.err" "passport rdp did not open its tunnel" grep -q 'Press Ctrl-C' "$demo/rdp.out"
# The password is the server's own; the demo shows its length, not it.
password=$(sed -n 's/^  Password: //p' "$demo/rdp.out")
sed "s/^  Password: .*/  Password: (${#password} characters, hidden here)/" "$demo/rdp.out"
rdp_addr=$(sed -n 's/^  Host: *//p' "$demo/rdp.out"):$(sed -n 's/^  Port: *//p' "$demo/rdp.out")
echo "A Remote Desktop client would log on there; the lab's Windows host answers a"
echo "password check instead of RDP (passport lab logon-check):"
printf '%s\n' "$password" | "$root/bin/passport" lab logon-check "$rdp_addr" "$user"

say "terraform destroy: the user, its home and its processes leave every server"
tf_show brief destroy -auto-approve

say "The same certificate is refused now"
for a in $addresses; do
	# shellcheck disable=SC2086
	if ssh $ssh_opts "$user@$a" true 2>"$demo/ssh.err"; then
		echo "demo: $user could still log in to $a after destroy" >&2
		exit 1
	fi
	echo "$a: $(tr -d '\r' <"$demo/ssh.err" | tail -n 1)"
done
echo "and the Windows password, through the same tunnel:"
if printf '%s\n' "$password" | "$root/bin/passport" lab logon-check "$rdp_addr" "$user" 2>"$demo/logon.err"; then
	echo "demo: $user could still log on to $windows after destroy" >&2
	exit 1
fi
cat "$demo/logon.err"
kill -INT "$rdp_pid"
wait "$rdp_pid" || true
rdp_pid=

say "What was done on the servers: every login recorded on its host, collected into the lab's S3 at destroy: passport sessions list, then grep"
"$root/bin/passport" sessions list --request "$id"
"$root/bin/passport" sessions grep --request "$id" 'via sudo|through the tunnel'

say "The audit trail of the request in the service's ledger, hash-chained: passport audit list, then verify"
"$root/bin/passport" audit list --request "$id"
"$root/bin/passport" audit verify

say "The Passport portal: the same service in a browser, at $PASSPORT_SERVER/"
# A browser that is not signed in is sent to the service's SAML sign-in.
portal=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --cacert "$PASSPORT_SERVER_CA" "$PASSPORT_SERVER/requests/new")
case $portal in
"303 $PASSPORT_SERVER/saml/login"*) ;;
*)
	echo "demo: the portal at $PASSPORT_SERVER/requests/new answered $portal, not the sign-in" >&2
	exit 1
	;;
esac
echo "Open $PASSPORT_SERVER/ in a browser (it does not know the lab's CA: trust"
echo "$PASSPORT_SERVER_CA, or accept the warning) and sign in at the lab's IdP as:"
echo "  alice / alice-lab   (ops: staging at once for 2 hours, up to 4 once someone approves; approves staging)"
echo "  bob   / bob-lab     (dev: staging at once for an hour, up to 4 once someone approves)"
echo "  carol / carol-lab   (admins and ops: everything; approves, reviews break-glass, sees every request)"
echo "  dave  / dave-lab    (oncall: production once an administrator approves, or at once by breaking the glass)"
echo "  erin  / erin-lab    (admins)"
echo "(the lab's policy: docs/guides/policy.md)"
if [ -t 0 ]; then
	printf 'The lab stays up for the portal until you press Enter. '
	read -r _
fi

say "Stopping the lab: every host, namespace and process it started goes"
kill -INT "$lab_pid"
wait "$lab_pid" || true
lab_pid=
echo "Done."
