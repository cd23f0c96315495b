package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/service/servicetest"
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

	// -o writes a file only its owner can read: it holds what was typed.
	file := filepath.Join(t.TempDir(), "s.cast")
	if _, stderr, err := passportRun(t, "sessions", "export", "--recordings", dir, "-o", file, shell); err != nil {
		t.Fatalf("export -o: %v\n%s", err, stderr)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("export -o wrote %v, %v; want mode 0600", st, err)
	} else if b, _ := os.ReadFile(file); string(b) != cast {
		t.Errorf("export -o wrote another asciicast than stdout's")
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
		{[]string{"sessions", "list", "--recordings", dir, "--server", "https://passport.example.com"}, "recordings can be read from one place: give one of --server, --recordings"},
		{[]string{"sessions", "list", "--recordings-bucket", "passport-recordings"}, "--ledger is required"},
		{[]string{"sessions", "delete", shell, "--reason", "INC-1"}, "give --server (or PASSPORT_SERVER) to delete through the Passport service, or --recordings-bucket"},
		{[]string{"sessions", "delete", shell, "--reason", "INC-1", "--server", "https://passport.example.com", "--recordings-bucket", "b"}, "give one of --server (through the Passport service) and --recordings-bucket"},
		{[]string{"sessions", "delete", shell, "--server", "https://passport.example.com"}, "--reason is required"},
	} {
		_, stderr, err := passportRun(t, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("passport %s: %v\n%s\nwant an error saying %q", strings.Join(c.args, " "), err, stderr, c.want)
		}
	}
}

// A person's real SSH session on a lab host is recorded by the host's
// recorder; once its recording is where collection keeps it, the person
// lists, searches, exports and plays it with passport sessions through
// the service, and someone policy does not let view the request sees
// nothing of it.
func TestSessionsThroughTheService(t *testing.T) {
	dir := t.TempDir()
	l := labtest.Start(t, lab.Options{Hosts: 1})
	svc := servicetest.Start(t, l, func(s *service.Settings) { s.Recordings = recording.Dir(dir) })
	t.Setenv("PASSPORT_CONFIG_DIR", t.TempDir())
	for _, k := range []string{client.EnvServer, client.EnvServerCA, "PASSPORT_TOKEN", envRecordings} {
		t.Setenv(k, "")
	}
	ctx := context.Background()
	h := l.Hosts[0]
	instance := h.Info().InstanceID
	alice := svc.Token(t, "alice")
	c, err := client.New(svc.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ssh.NewSignerFromKey(priv)
	req, err := c.WithToken(alice).Create(ctx, api.CreateRequest{Targets: []string{instance}, Reason: "INC-77 look at the disk", Duration: "1h",
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey())))}, "")
	if err != nil {
		t.Fatal(err)
	}
	cert := labtest.CertSigner(t, key, req.Certificate)

	// The person types on a terminal, and runs a command without one.
	screen := labtest.Converse(t, h, req.Username, cert, [2]string{"$ ", "echo typed-$((6*7))\r"}, [2]string{"typed-42", "exit\r"})
	if !strings.Contains(screen, "typed-42") {
		t.Fatalf("the terminal showed %q", screen)
	}
	if out, err := labtest.Login(t, h, req.Username, cert, "echo printed-$((7*6)) >&2"); err != nil || out != "printed-42" {
		t.Fatalf("a command: %q, %v", out, err)
	}
	labtest.CollectRecordings(t, h, req.Username, filepath.Join(dir, req.ID, instance))

	run := func(token string, args ...string) (string, string, error) {
		t.Helper()
		t.Setenv("PASSPORT_TOKEN", token)
		return passportRun(t, append(args, "--server", svc.URL)...)
	}
	out, stderr, err := run(alice, "sessions", "list", "--request", req.ID)
	if err != nil {
		t.Fatalf("list: %v\n%s", err, stderr)
	}
	ids := regexp.MustCompile(req.ID+`/`+instance+`/[0-9]{8}-[0-9]{6}-[A-Za-z0-9]{6}`).FindAllString(out, -1)
	if len(ids) != 2 || !strings.Contains(out, req.Username) || !strings.Contains(out, "alice") {
		t.Fatalf("list printed:\n%s\nwant the two sessions, by %s for alice", out, req.Username)
	}

	out, stderr, err = run(alice, "sessions", "grep", `typed-|printed-`, "--request", req.ID)
	if err != nil {
		t.Fatalf("grep: %v\n%s", err, stderr)
	}
	var shell string
	for _, want := range []string{`in   echo typed-$((6*7))`, "out  typed-42", "out  printed-42"} {
		i := strings.Index(out, want)
		if i < 0 {
			t.Errorf("grep printed:\n%s\nwant a line with %q", out, want)
			continue
		}
		if want == "out  typed-42" {
			line := out[strings.LastIndex(out[:i], "\n")+1:]
			shell = strings.Fields(line)[0]
		}
	}
	if shell == "" {
		t.FailNow()
	}

	cast, stderr, err := run(alice, "sessions", "export", "--format", "asciicast", shell)
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(cast), "\n")
	var header struct {
		Version, Width, Height int
		Timestamp              int64
	}
	if err := json.Unmarshal([]byte(lines[0]), &header); err != nil || header.Version != 2 || header.Width != 80 || header.Height != 24 ||
		header.Timestamp < req.IssuedAt.Unix()-60 {
		t.Fatalf("export header %q: %+v, %v", lines[0], header, err)
	}
	var output strings.Builder
	for _, line := range lines[1:] {
		var ev [3]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if ev[1] == "o" {
			output.WriteString(ev[2].(string))
		}
	}
	if !strings.Contains(output.String(), "typed-42") {
		t.Errorf("the export's output lacks what the terminal showed: %q", output.String())
	}

	out, stderr, err = run(alice, "sessions", "play", "--speed", "20", "--idle-limit", "100ms", shell)
	if err != nil || !strings.Contains(out, "typed-42") {
		t.Errorf("play: %v\n%q\n%s", err, out, stderr)
	}

	// A Windows target's event session of the same request, through the
	// service: JSON lines as collected; asciicast refused, saying why.
	events, err := os.ReadFile("../../internal/recording/testdata/windows-events/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	win := req.ID + "/i-0fedcba9876543210/20261206-091500-3e7a01"
	if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(win)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(win), "events.jsonl"), events, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := run(alice, "sessions", "export", "--format", "jsonl", win); err != nil || out != string(events) {
		t.Errorf("export --format jsonl through the service: %v\n%q\n%s", err, out, stderr)
	}
	if _, stderr, err := run(alice, "sessions", "export", "--format", "asciicast", win); err == nil || !strings.Contains(stderr, "not a terminal recording") {
		t.Errorf("asciicast of an event session through the service: %v\n%s", err, stderr)
	}
	if _, stderr, err := run(alice, "sessions", "export", "--format", "jsonl", shell); err == nil || !strings.Contains(stderr, "terminal recording, not a Windows event log") {
		t.Errorf("jsonl of a terminal session through the service: %v\n%s", err, stderr)
	}

	// An operator with the ledger and the bucket reads them directly,
	// once collection (here the reconciler's pass) has stored them, and
	// is told when an object is no longer the one collected.
	for _, kv := range l.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if _, stderr, err := passportRun(t, "reconcile", "--once", "--ledger", svc.Ledger, "--recordings-bucket", lab.RecordingsBucket, "--policy", "none"); err != nil {
		t.Fatalf("reconcile: %v\n%s", err, stderr)
	}
	direct := []string{"--ledger", svc.Ledger, "--recordings-bucket", lab.RecordingsBucket}
	out, stderr, err = passportRun(t, append([]string{"sessions", "list", "--request", req.ID}, direct...)...)
	if err != nil || !strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(shell)+` +`+req.Username+` +alice +\S+ +[0-9.]+m?s `).MatchString(out) {
		t.Fatalf("list from the bucket: %v\n%s\n%s\nwant both sessions, by %s for alice, with how long each lasted", err, out, stderr, req.Username)
	}
	out, stderr, err = passportRun(t, append([]string{"sessions", "grep", "typed-42"}, direct...)...)
	if err != nil || !strings.Contains(out, shell) {
		t.Fatalf("grep in the bucket: %v\n%s\n%s", err, out, stderr)
	}
	store, err := collect.NewStore(l.AWSConfig(), lab.RecordingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	// The command session's object, put where the shell session's was.
	other := ids[0]
	if other == shell {
		other = ids[1]
	}
	forged, err := store.Get(ctx, "recordings/"+other)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, ledger.RecordingKey(req.ID, instance, strings.Split(shell, "/")[2]), forged, "application/gzip"); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := passportRun(t, append([]string{"sessions", "grep", "typed-42"}, direct...)...); err == nil || !strings.Contains(stderr, shell+" could not be searched: "+shell+" changed since it was collected") {
		t.Errorf("grep after an object was replaced: %v\n%s", err, stderr)
	}

	// bob's requests are his own; policy does not let him view alice's.
	bob := svc.Token(t, "bob")
	if out, _, err := run(bob, "sessions", "list"); err != nil || strings.Contains(out, req.ID) {
		t.Errorf("bob's list: %v\n%s", err, out)
	}
	if out, _, err := run(bob, "sessions", "grep", "typed"); err != nil || strings.Contains(out, "typed") {
		t.Errorf("bob's grep: %v\n%s", err, out)
	}
	if _, stderr, err := run(bob, "sessions", "play", shell); err == nil || !strings.Contains(stderr, "that you may see") {
		t.Errorf("bob plays alice's session: %v\n%s", err, stderr)
	}
}

// On a terminal, play reads keys: q stops the playback at once, long
// before the slowed-down session would end.
func TestSessionsPlayStopsOnQ(t *testing.T) {
	dir, shell, _ := recordingsDir(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script (util-linux) gives play a terminal here; install util-linux")
	}
	// At this speed the recording's 0.3 s take a minute: only q ends it
	// within the test's wait.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	play := strings.Join([]string{os.Args[0], "sessions", "play", "--recordings", dir, "--speed", "0.005", shell}, " ")
	cmd := exec.CommandContext(ctx, "script", "-qec", play, "/dev/null")
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	cmd.Stdin = strings.NewReader("q")
	out, err := cmd.CombinedOutput()
	if err != nil || ctx.Err() != nil {
		t.Fatalf("play on a terminal, then q: %v\n%q", err, out)
	}
	if !strings.Contains(string(out), "space pauses, . steps, q quits") || strings.Contains(string(out), "done") {
		t.Errorf("play showed %q; want the keys named and the playback stopped before the session's end", out)
	}
}

// A Windows target's session is its Security log events of one logon:
// list shows it, grep finds a program's command line, export writes its
// JSON lines, and asciicast and play say it is not a terminal recording.
func TestSessionsWindowsEvents(t *testing.T) {
	dir := t.TempDir()
	id := "ar-0123456789abcdef/i-0fedcba9876543210/20261206-091500-3e7a01"
	dst := filepath.Join(dir, filepath.FromSlash(id))
	want, err := os.ReadFile("../../internal/recording/testdata/windows-events/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "events.jsonl"), want, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := passportRun(t, "sessions", "list", "--recordings", dir)
	if err != nil || !strings.Contains(out, id) {
		t.Errorf("list: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = passportRun(t, "sessions", "grep", "--recordings", dir, `payroll`)
	if err != nil || !strings.Contains(out, id+"  +42.2s  out  2026-12-06T09:15:42.250Z 4688 process C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe command line: powershell.exe -NoProfile -Command \"Copy-Item C:\\payroll\\2026.xlsx \\\\fileserver\\out\"") {
		t.Errorf("grep: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = passportRun(t, "sessions", "export", "--format", "jsonl", "--recordings", dir, id)
	if err != nil || out != string(want) {
		t.Errorf("export --format jsonl: %v\n%q\n%s", err, out, stderr)
	}
	for _, args := range [][]string{{"export", "--format", "asciicast"}, {"play"}} {
		_, stderr, err = passportRun(t, append(append([]string{"sessions"}, args...), "--recordings", dir, id)...)
		if err == nil || !strings.Contains(stderr, "not a terminal recording") || !strings.Contains(stderr, "--format jsonl") {
			t.Errorf("%v of an event log: %v\n%s", args, err, stderr)
		}
	}
}
