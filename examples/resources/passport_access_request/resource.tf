resource "passport_certificate_authority" "main" {
  name          = "main"
  key_algorithm = "ecdsa-p256"
  key_store     = "kms"
}

data "passport_targets" "staging" {
  platform    = "Linux"
  ping_status = "Online"
  tags = {
    Env = "staging"
  }
}

# Two hours on every staging server, with your own key: the private key
# never leaves your machine.
resource "passport_access_request" "incident" {
  reason                = "INC-4711: payment workers time out on staging"
  targets               = data.passport_targets.staging.ids
  duration              = "2h"
  certificate_authority = passport_certificate_authority.main.signer
  public_key            = file("~/.ssh/id_ed25519.pub")

  timeouts {
    create = "5m"
  }
}

# OpenSSH picks up <key>-cert.pub next to the key given with -i.
resource "local_file" "certificate" {
  filename        = pathexpand("~/.ssh/id_ed25519-cert.pub")
  content         = passport_access_request.incident.certificate
  file_permission = "0600"
}

output "login" {
  value = {
    for id, address in passport_access_request.incident.target_addresses :
    id => "ssh -i ~/.ssh/id_ed25519 ${passport_access_request.incident.username}@${address}"
  }
}
