package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestShell runs passport shell as a person would: a command from a
// script (stdout, stderr and the exit code kept apart), the default shell
// fed from a pipe, and a command on a real terminal whose size reaches the
// target.
func TestShell(t *testing.T) {
	cl := startConnectLab(t, 1)
	host := cl.Hosts[0].Info()

	cmd := exec.Command(os.Args[0], "shell", host.ComputerName, "--", "echo out; echo err >&2; exit 7")
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Fatalf("passport shell %s -- 'echo out; echo err >&2; exit 7': %v, stdout %q, stderr %q; want exit 7, out, err", host.ComputerName, err, stdout.String(), stderr.String())
	}

	cmd = exec.Command(os.Args[0], "shell", host.InstanceID)
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	cmd.Stdin = strings.NewReader("echo I am $(id -un); exit\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "I am ssm-user") {
		t.Fatalf("passport shell %s with commands on stdin: %v\n%s", host.InstanceID, err, out)
	}

	// script(1) gives passport a real terminal, sized 123x45.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd = exec.CommandContext(ctx, "script", "-qec", "stty cols 123 rows 45; '"+os.Args[0]+"' shell "+host.InstanceID+" -- 'stty size; tty'", "/dev/null")
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	// script ends the session it runs when its own input ends; this input
	// stays open until the command is done.
	keep, hold, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	cmd.Stdin = keep
	out, err = cmd.CombinedOutput()
	keep.Close()
	if err != nil || !strings.Contains(string(out), "45 123") || !strings.Contains(string(out), "/dev/pts/") {
		t.Fatalf("passport shell on a 123x45 terminal: %v\n%q\nwant the command to see the same size, on a terminal", err, out)
	}
}
