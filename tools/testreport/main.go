// Command testreport runs `go test -json` and says what ran: it shows the
// whole output of every failing test, every skipped test with its reason,
// and fails the run when a test skips that the allow-list does not name,
// so a green run cannot hide tests that never ran.
//
//	go run ./tools/testreport -allow scripts/allowed-skips -- go test -json ./...
//
// The allow-list has one entry a line, "PACKAGE TEST-PATTERN # reason"
// (PACKAGE relative to the module; TEST-PATTERN a path.Match pattern over
// the test's full name, so a subtest is "TestX/*"). Every entry needs a
// reason, on its line or in the comment lines just above it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"
)

const modulePath = "github.com/passport-access/terraform-provider-passport"

func main() {
	allowFile := flag.String("allow", "", "the allow-list of tests that may skip (none may, without it)")
	stale := flag.Bool("stale", false, "also list allow-list entries that matched no skip")
	tally := flag.String("tally", "", "add this run's counts to FILE")
	total := flag.String("total", "", "print the counts FILE has added up, and run nothing")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testreport [-allow FILE] [-stale] [-tally FILE] -- go test -json [flags] [packages]")
		fmt.Fprintln(os.Stderr, "       testreport -total FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *total != "" {
		c, err := readTally(*total)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(1)
		}
		// The one line a reader of the whole log looks for last.
		fmt.Printf("tests: %s\n", &c)
		return
	}
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*allowFile, *stale, *tally, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
}

func run(allowFile string, stale bool, tally string, command []string) error {
	var allow allowList
	if allowFile != "" {
		f, err := os.Open(allowFile)
		if err != nil {
			return err
		}
		allow, err = parseAllowList(f, allowFile)
		f.Close()
		if err != nil {
			return err
		}
	}

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	r := newReport(os.Stdout, allow)
	readErr := r.read(stdout)
	waitErr := cmd.Wait()
	good := r.summary(time.Since(start))
	if tally != "" {
		if err := addTally(tally, r.total); err != nil {
			return err
		}
	}
	if stale {
		for _, a := range allow {
			if !a.used {
				fmt.Printf("allow-list line %d (%s %s) matched no skip in this run\n", a.line, a.pkg, a.pattern)
			}
		}
	}
	switch {
	case readErr != nil:
		return fmt.Errorf("reading the test events: %w", readErr)
	case waitErr != nil:
		var exit *exec.ExitError
		if errors.As(waitErr, &exit) {
			return fmt.Errorf("%s exited with status %d", command[0], exit.ExitCode())
		}
		return waitErr
	case !good:
		return errors.New("tests failed or skipped without leave (see above)")
	}
	return nil
}

// readTally reads the counts -tally wrote.
func readTally(file string) (counts, error) {
	var c counts
	b, err := os.ReadFile(file)
	if err != nil {
		return c, err
	}
	if _, err := fmt.Sscanf(string(b), "%d %d %d", &c.pass, &c.fail, &c.skip); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// addTally adds c to the counts in file, which need not exist yet.
func addTally(file string, c counts) error {
	sum, err := readTally(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	sum.add(c)
	return os.WriteFile(file, fmt.Appendf(nil, "%d %d %d\n", sum.pass, sum.fail, sum.skip), 0o644)
}
