# Who is running Terraform, from the session `passport login` stored.
provider "passport" {
  saml {
    idp_metadata = "https://idp.example.com/app/passport/sso/saml/metadata"
  }
}

data "passport_identity" "me" {}

output "signed_in_as" {
  value = "${data.passport_identity.me.subject} (${join(", ", data.passport_identity.me.groups)}) until ${data.passport_identity.me.expires_at}"
}
