# A client of the Passport service: no AWS credentials, no ledger, no
# policy here. People sign in first with `passport login --server <URL>`; a
# CI job signs in with its own AWS identity where the service allows it.
provider "passport" {
  server = "https://passport.example.com"

  # Only when the service's TLS certificate comes from a private CA.
  server_ca_file = "/etc/ssl/certs/example-corp-ca.pem"
}
