# Credentials, region and profile come from the standard AWS chain, as in
# the AWS provider. The endpoints block points services elsewhere: here the
# local Passport lab that `passport lab up` starts.
provider "passport" {
  region = "us-east-1"

  endpoints {
    ssm = "http://127.0.0.1:4566"
    kms = "http://127.0.0.1:4566"
  }
}
