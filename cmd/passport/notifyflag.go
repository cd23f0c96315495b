package main

import (
	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/notify"
)

// notifyFlag is --notify-config, the notifications file that serve,
// reconcile and lab up read and check alike (notify.Load), so a bad file
// gets the same words from each, before anything is opened.
type notifyFlag string

func (f *notifyFlag) register(cmd *cobra.Command, def, usage string) {
	cmd.Flags().StringVar((*string)(f), "notify-config", def, usage)
}

// load reads and checks the file; nil when none was given.
func (f notifyFlag) load() (*notify.Config, error) {
	if f == "" {
		return nil, nil
	}
	return notify.Load(string(f))
}
