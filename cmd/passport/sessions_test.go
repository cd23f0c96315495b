package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordingsDir lays the recording package's real sudo I/O logs out as
// collection keeps them, request/instance/session/.
func recordingsDir(t *testing.T) (dir, shell, pipe string) {
	t.Helper()
	dir = t.TempDir()
	place := func(src, id string) {
		dst := filepath.Join(dir, filepath.FromSlash(id))
		if err := os.MkdirAll(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(src)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600)
		}
	}
	shell = "ar-0123456789abcdef/i-0a1b2c3d4e5f67890/20261206-064656-PAwD9y"
	pipe = "ar-0123456789abcdef/i-0a1b2c3d4e5f67890/20261206-064656-O0BVPp"
	place("../../internal/recording/testdata/sudo-terminal", shell)
	place("../../internal/recording/testdata/sudo-pipe", pipe)
	return dir, shell, pipe
}

// An operator with the recordings at hand lists, exports, searches and
// plays them directly.
func TestSessionsDirect(t *testing.T) {
	dir, shell, pipe := recordingsDir(t)
	out, stderr, err := passportRun(t, "sessions", "list", "--recordings", dir)
	if err != nil {
		t.Fatalf("list: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, shell) || !strings.Contains(out, pipe) || !strings.Contains(out, "nobody") {
		t.Errorf("list printed:\n%s", out)
	}
	if out, _, _ := passportRun(t, "sessions", "list", "--recordings", dir, "--host", "i-00000000000000000"); strings.Contains(out, shell) {
		t.Errorf("list --host of another instance printed:\n%s", out)
	}

	// A session name alone is enough where it is unique.
	cast, stderr, err := passportRun(t, "sessions", "export", "--format", "asciicast", "--recordings", dir, "20261206-064656-PAwD9y")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(cast), "\n")
	var header struct {
		Version, Width, Height int
	}
	if err := json.Unmarshal([]byte(lines[0]), &header); err != nil || header.Version != 2 || header.Width != 80 || header.Height != 24 {
		t.Fatalf("export header %q: %+v, %v", lines[0], header, err)
	}
	for _, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Errorf("export line %q is not an event", l)
		}
	}

	out, stderr, err = passportRun(t, "sessions", "grep", "--recordings", dir, "secret|stderr")
	if err != nil {
		t.Fatalf("grep: %v\n%s", err, stderr)
	}
	for _, want := range []string{shell + "  +0.0s  in   secret input", shell + "  +0.0s  out  got secret input", pipe + "  +0.0s  out  to stderr"} {
		if !strings.Contains(out, want) {
			t.Errorf("grep printed:\n%s\nwant a line %q", out, want)
		}
	}

	out, stderr, err = passportRun(t, "sessions", "play", "--recordings", dir, "--speed", "50", shell)
	if err != nil || !strings.Contains(out, "hello wörld\r\n") || !strings.Contains(out, "\x1b[31mred") {
		t.Errorf("play: %v\n%q\n%s", err, out, stderr)
	}
}

func TestSessionsBadInput(t *testing.T) {
	dir, shell, _ := recordingsDir(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sessions", "list"}, "give --server"},
		{[]string{"sessions", "list", "--recordings", filepath.Join(dir, "none")}, "is not a directory of recordings"},
		{[]string{"sessions", "play", "--recordings", dir, "nosuch"}, `no recording you may see is named "nosuch"`},
		{[]string{"sessions", "play", "--recordings", dir, "ar-1/i-2/x"}, `"ar-1" is not a request id`},
		{[]string{"sessions", "play", "--recordings", dir, "--speed", "0", shell}, "--speed 0"},
		{[]string{"sessions", "play", "--recordings", dir, "--idle-limit", "-1s", shell}, "--idle-limit -1s"},
		{[]string{"sessions", "export", "--recordings", dir, "--format", "json", shell}, `--format "json"`},
		{[]string{"sessions", "grep", "--recordings", dir, "("}, "not a regular expression"},
		{[]string{"sessions", "list", "--recordings", dir, "--server", "https://passport.example.com"}, "not both"},
	} {
		_, stderr, err := passportRun(t, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("passport %s: %v\n%s\nwant an error saying %q", strings.Join(c.args, " "), err, stderr, c.want)
		}
	}
}
