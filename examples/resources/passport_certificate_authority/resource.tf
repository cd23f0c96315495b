# Recommended: the private key is created in AWS KMS and never leaves it.
# Every certificate Passport issues is one kms:Sign call.
resource "passport_certificate_authority" "main" {
  name          = "main"
  key_algorithm = "ecdsa-p256"
  key_store     = "kms"
}

# For small or offline setups: the private key lives in the Terraform state,
# so whoever can read the state can sign certificates.
resource "passport_certificate_authority" "lab" {
  name          = "lab"
  key_algorithm = "ed25519"
  key_store     = "state"
}

# Hosts trust the CA's public key for Passport's users only.
output "ca_public_key" {
  value = passport_certificate_authority.main.public_key
}
