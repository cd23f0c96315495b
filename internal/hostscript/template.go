package hostscript

import (
	"fmt"
	"slices"
)

// Platforms a host program runs on, as SSM names them.
const (
	Linux   = "Linux"
	Windows = "Windows"
)

// Actions are the host programs Passport ships for each platform.
var Actions = []string{"provision", "extend", "revoke", "check", "inventory", "sweep", "collect"}

// Ships reports whether Passport ships action's program for platform:
// every action on both (Windows' collect hands over the event log).
func Ships(platform, action string) bool {
	if platform == Windows {
		_, ok := winBodies[action]
		return ok
	}
	return slices.Contains(Actions, action)
}

// TakesData reports whether action's program reads a data block; inventory
// and sweep run the same on every host.
func TakesData(action string) bool {
	return action != "inventory" && action != "sweep"
}

// linuxBody is a Linux program after the shared library, as it ships.
// Provision carries the sweep it installs, whole: the here-document that
// holds it must stay byte for byte what Sweep returns.
func linuxBody(action string) string {
	switch action {
	case "provision":
		return sweepFunction() + recorderFunctions() + shipped(provisionSource)
	case "extend":
		return shipped(extendSource)
	case "revoke":
		return shipped(revokeSource)
	case "check":
		return shipped(checkSource)
	case "inventory":
		return shipped(inventorySource)
	case "sweep":
		return shipped(sweepSource)
	case "collect":
		return shipped(collectSource)
	}
	return ""
}

// Template returns the program action runs on platform with marker where
// its data block goes, so that the program can be published elsewhere
// (as an SSM document whose parameter fills the marker) and still be
// byte for byte the program Passport sends directly: the program for data
// d is Template with marker d. Programs that take no data come whole.
// marker is not checked: whoever fills it must admit only base64.
func Template(platform, action, marker string) (string, error) {
	if !slices.Contains(Actions, action) {
		return "", fmt.Errorf("hostscript: %q is not a host program; Passport ships %v", action, Actions)
	}
	if !TakesData(action) {
		marker = ""
	}
	switch platform {
	case Linux:
		return assemble(action, marker, linuxBody(action)), nil
	case Windows:
		if !Ships(Windows, action) {
			return "", fmt.Errorf("hostscript: Passport ships no %s program for Windows", action)
		}
		return winAssemble(action, marker), nil
	}
	return "", fmt.Errorf("hostscript: %q is not a platform Passport ships programs for; use %s or %s", platform, Linux, Windows)
}
