# A KMS-backed certificate authority is imported by its KMS key ARN or key id.
# The key must have been created by Passport: its description names the CA.
# A state-stored certificate authority cannot be imported (its private key
# exists only in the state that created it).
terraform import passport_certificate_authority.main arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
