# Access for this run only: a provisioner configures the Windows servers
# with a password that is never written to the state, and the user is
# removed when the run ends.
ephemeral "passport_access_request" "configure" {
  reason                = "CHG-2291: install the monitoring agent on the app servers"
  targets               = data.passport_targets.windows_app.ids
  duration              = "30m"
  certificate_authority = passport_certificate_authority.main.signer
}

data "passport_targets" "windows_app" {
  platform    = "Windows"
  ping_status = "Online"
  tags = {
    Role = "app"
  }
}

resource "terraform_data" "agent" {
  for_each = toset(data.passport_targets.windows_app.ids)

  provisioner "remote-exec" {
    connection {
      type     = "winrm"
      host     = each.key
      user     = ephemeral.passport_access_request.configure.username
      password = ephemeral.passport_access_request.configure.passwords[each.key]
    }
    inline = ["msiexec /i C:\\agents\\monitoring.msi /quiet"]
  }
}
