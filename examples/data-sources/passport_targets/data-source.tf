# Every Linux server of the staging environment whose SSM agent is connected.
data "passport_targets" "staging" {
  platform    = "Linux"
  ping_status = "Online"
  tags = {
    Env = "staging"
  }
}

output "staging_servers" {
  value = data.passport_targets.staging.ids
}
