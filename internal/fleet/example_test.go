package fleet_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
)

// A grant checks that every target can take the script, then sends it and
// reports each host that did not succeed.
func ExampleRunner_Run() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	r := fleet.New(ssm.NewFromConfig(cfg), fleet.Options{FirstPoll: 3 * time.Second})
	targets := []string{"i-0123456789abcdef0", "i-0fedcba9876543210"}

	inv, err := r.Inventory(ctx, targets)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range inv {
		if why := t.Unreachable(); why != "" {
			log.Fatal(why)
		}
	}

	results, err := r.Run(ctx, fleet.Job{Targets: targets, Script: "echo provisioned", Comment: "passport grant g-42"})
	if err != nil {
		log.Fatal(err)
	}
	for _, res := range results {
		if res.Outcome != fleet.Success {
			fmt.Println(res.Reason)
		}
	}
}
