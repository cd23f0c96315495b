package connect_test

import (
	"fmt"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

// The ssh_config snippet for one request, as a Terraform attribute would
// show it: paths under ~ (which ssh_config expands) and passport from PATH.
func ExampleOpenSSH_Hosts() {
	o := connect.OpenSSH{
		Store: connect.Store{Dir: "~/.config/passport/requests"},
		Proxy: []string{"passport", "proxy"},
	}
	text, err := o.Hosts([]connect.Request{{
		ID: "ar-0123456789abcdef", Username: "pp-7f3k2m9q", HasKey: true,
		ExpiresAt: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC),
		Targets:   []connect.Target{{InstanceID: "i-0123456789abcdef0", Name: "web-1"}},
	}})
	if err != nil {
		panic(err)
	}
	fmt.Print(text)
	// Output:
	// # access request ar-0123456789abcdef, expires 2026-11-24T13:00:00Z
	// Host i-0123456789abcdef0 web-1
	//     HostName i-0123456789abcdef0
	//     User pp-7f3k2m9q
	//     IdentityFile ~/.config/passport/requests/ar-0123456789abcdef/key
	//     CertificateFile ~/.config/passport/requests/ar-0123456789abcdef/key-cert.pub
	//     IdentitiesOnly yes
	//     ProxyCommand passport proxy %h %p
	//     UserKnownHostsFile ~/.config/passport/requests/known_hosts
	//     StrictHostKeyChecking accept-new
}
