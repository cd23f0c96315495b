# The Passport demo: time-boxed access to the lab's staging servers, two
# Linux (SSH certificate) and one Windows (a password the server made).
# scripts/demo.sh runs it against `passport lab up`; the provider finds the
# lab through the AWS_ENDPOINT_URL_* variables the lab prints.

terraform {
  required_providers {
    passport = {
      source = "passport-access/passport"
    }
  }
}

provider "passport" {}

# The CA's private key stays in (the lab's) KMS: every certificate is a
# kms:Sign call.
resource "passport_certificate_authority" "demo" {
  name          = "demo"
  key_algorithm = "ecdsa-p256"
  key_store     = "kms"
}

# Every staging server whose SSM agent is connected.
data "passport_targets" "staging" {
  ping_status = "Online"
  tags = {
    Env = "staging"
  }
}

resource "passport_access_request" "incident" {
  reason                = "INC-4711: disk alerts on the staging web servers"
  targets               = data.passport_targets.staging.ids
  duration              = "1h"
  certificate_authority = passport_certificate_authority.demo.signer
  sudo                  = true
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
