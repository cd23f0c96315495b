# The Passport demo: time-boxed access to the lab's staging servers, two
# Linux (SSH certificate) and one Windows (a password the server made),
# asked of the Passport service. scripts/demo.sh runs it against
# `passport lab up`, which runs the service; the provider finds it through
# PASSPORT_SERVER and PASSPORT_SERVER_CA, and signs in with the AWS
# identity at hand: the lab's requester, which may call nothing on the
# access path itself.

terraform {
  required_providers {
    passport = {
      source = "passport-access/passport"
    }
  }
}

# Service mode (PASSPORT_SERVER): no AWS permission, no ledger, no policy
# here; the service holds them.
provider "passport" {}

# Who the service says is asking.
data "passport_identity" "me" {}

# Every staging server whose SSM agent is connected, as the service sees
# them with its own AWS identity.
data "passport_targets" "staging" {
  ping_status = "Online"
  tags = {
    Env = "staging"
  }
}

resource "passport_access_request" "incident" {
  reason   = "INC-4711: disk alerts on the staging web servers"
  targets  = data.passport_targets.staging.ids
  duration = "1h"
  sudo     = true
}

output "requester" {
  value = "${data.passport_identity.me.kind} ${data.passport_identity.me.subject}"
}

output "id" {
  value = passport_access_request.incident.id
}

output "username" {
  value = passport_access_request.incident.username
}

output "expires_at" {
  value = passport_access_request.incident.expires_at
}

# The Linux targets, for ssh; the Windows ones are reached with passport rdp.
output "linux_addresses" {
  value = {
    for id, address in passport_access_request.incident.target_addresses :
    id => address if passport_access_request.incident.target_platforms[id] == "Linux"
  }
}

output "windows_targets" {
  value = [
    for id, platform in passport_access_request.incident.target_platforms :
    id if platform == "Windows"
  ]
}

output "certificate" {
  value = passport_access_request.incident.certificate
}

output "private_key" {
  value     = passport_access_request.incident.private_key
  sensitive = true
}
