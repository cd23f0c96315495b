package provider

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// TestAccTargetsDataSource: passport_targets finds managed instances by
// tag, platform and connection status, directly from Systems Manager and,
// through the service, as the lab's requester machine, whose own AWS
// credentials could not list them.
func TestAccTargetsDataSource(t *testing.T) {
	runModes(t, []accMode{direct, serviceMachine}, testTargetsDataSource)
}

func testTargetsDataSource(t *testing.T, mode accMode) {
	// Two model nodes (Linux, Env=scale) and three Windows hosts (staging,
	// production, staging), the last one stopped.
	l := startAccLabIn(t, lab.Options{ModelNodes: 2, WindowsHosts: 3}, mode)
	if err := l.Windows[2].Stop(); err != nil {
		t.Fatal(err)
	}
	info := func(ns ...node.Info) []node.Info { return ns }
	models := info(l.Models[0].Info(), l.Models[1].Info())
	all := append(info(l.Windows[0].Info(), l.Windows[1].Info(), l.Windows[2].Info()), models...)
	config := l.config(`
data "passport_targets" "all" {}

data "passport_targets" "staging_windows_online" {
  tags        = { Env = "staging" }
  platform    = "Windows"
  ping_status = "Online"
}

data "passport_targets" "scale" {
  tags     = { Env = "scale" }
  platform = "Linux"
}

data "passport_targets" "lost" {
  ping_status = "ConnectionLost"
}
`)
	// Every instance of a data source, in instance id order, with what
	// SSM says of it.
	matches := func(addr string, want []node.Info, status func(node.Info) string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			a, err := attributes(s, addr)
			if err != nil {
				return err
			}
			want = slices.Clone(want)
			slices.SortFunc(want, func(x, y node.Info) int { return strings.Compare(x.InstanceID, y.InstanceID) })
			if a["ids.#"] != fmt.Sprint(len(want)) || a["instances.#"] != fmt.Sprint(len(want)) {
				return fmt.Errorf("%s found %s instances, want %d", addr, a["ids.#"], len(want))
			}
			for i, w := range want {
				at := func(k string) string { return a[fmt.Sprintf("instances.%d.%s", i, k)] }
				if a[fmt.Sprintf("ids.%d", i)] != w.InstanceID || at("instance_id") != w.InstanceID || at("computer_name") != w.ComputerName ||
					at("ip_address") != w.IPAddress || at("platform_type") != w.PlatformType || at("platform_name") != w.PlatformName || at("ping_status") != status(w) {
					return fmt.Errorf("%s instance %d is %s %s %s %s %s %s, want %+v (%s)", addr, i, at("instance_id"), at("computer_name"), at("ip_address"),
						at("platform_type"), at("platform_name"), at("ping_status"), w, status(w))
				}
			}
			return nil
		}
	}
	lost := l.Windows[2].Info().InstanceID
	status := func(n node.Info) string {
		if n.InstanceID == lost {
			return "ConnectionLost"
		}
		return "Online"
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeAggregateTestCheckFunc(
				matches("data.passport_targets.all", all, status),
				matches("data.passport_targets.staging_windows_online", info(l.Windows[0].Info()), status),
				matches("data.passport_targets.lost", info(l.Windows[2].Info()), status),
				matches("data.passport_targets.scale", models, status),
			),
		}},
	})
}
