# Passport in service mode: the provider asks the Passport service, which
# alone holds the AWS permissions that touch servers, sign certificates and
# write the ledger. This configuration needs no AWS credentials at all.
#
# Sign in first:
#   people:   passport login --server https://passport.example.com
#   CI jobs:  nothing to do; the job's AWS identity (role or user) signs in
#             by itself, where the service lets machines in.
terraform {
  required_providers {
    passport = { source = "passport-access/passport" }
  }
}

provider "passport" {
  # Or PASSPORT_SERVER. Add server_ca_file (or PASSPORT_SERVER_CA) when the
  # service's certificate comes from a private CA.
  server = "https://passport.example.com"
}

# Who the service says is asking: the person who signed in, or the machine.
data "passport_identity" "me" {}

# The service lists the instances with its own AWS identity.
data "passport_targets" "staging" {
  tags        = { Env = "staging" }
  platform    = "Linux"
  ping_status = "Online"
}

variable "public_key" {
  description = "Your SSH public key (the content of ~/.ssh/id_ed25519.pub). Left out, the provider makes a key pair on this machine and keeps the private key in the state; the service never sees it."
  type        = string
  default     = null
}

# An hour on the staging servers. The service's default certificate
# authority signs; name another of its CAs in certificate_authority.
resource "passport_access_request" "deploy" {
  reason     = "CHG-2041: deploy build 1234 to staging"
  targets    = data.passport_targets.staging.ids
  duration   = "1h"
  public_key = var.public_key
}

output "requester" {
  value = "${data.passport_identity.me.kind} ${passport_access_request.deploy.requester}"
}

output "connect" {
  value = passport_access_request.deploy.passport_commands
}
