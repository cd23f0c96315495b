package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// agent is the host's side of the lab: it plays the SSM agent (scripts,
// port forwarding) and systemd (keeping sshd alive) from PID 1.
type agent struct {
	cfg    Config
	reaper *reaper

	platformName, platformVersion string

	// systemd is set in a systemd host's agent: sshd is systemd's to run.
	systemd bool

	mu   sync.Mutex
	sshd sshdState
}

func newAgent(cfg Config) *agent {
	a := &agent{cfg: cfg, reaper: newReaper()}
	release := osRelease("/etc/os-release")
	a.platformName, a.platformVersion = release["NAME"], release["VERSION_ID"]
	return a
}

// osRelease reads the KEY=value lines of an os-release file; a missing file
// yields an empty map, as a host without one reports no platform.
func osRelease(path string) map[string]string {
	fields := make(map[string]string)
	b, err := os.ReadFile(path)
	if err != nil {
		return fields
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'`)
		}
		fields[k] = v
	}
	return fields
}

func (a *agent) serve(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", a.handleHealth)
	mux.HandleFunc("POST /run", a.handleRun)
	mux.HandleFunc("CONNECT /dial/{port}", a.handleDial)
	mux.HandleFunc("CONNECT /shell", a.handleShell)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

func (a *agent) handleHealth(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	h := health{PlatformName: a.platformName, PlatformVersion: a.platformVersion, SSHD: a.sshd}
	a.mu.Unlock()
	if a.systemd {
		h.SSHD = a.systemdSSHD()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(h)
}

// maxRequest bounds a script request; Run Command's own limit on a
// document's parameters is far below it.
const maxRequest = 8 << 20

func (a *agent) handleRun(w http.ResponseWriter, r *http.Request) {
	var req runRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRequest)).Decode(&req); err != nil {
		http.Error(w, "bad run request: "+err.Error(), http.StatusBadRequest)
		return
	}
	// The request's context ends when the lab closes the connection, which
	// is how cancellation reaches the script.
	res := a.run(r.Context(), req)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

// handleDial connects the caller to a TCP port of the host, as the SSM
// agent does for a port-forwarding session.
func (a *agent) handleDial(w http.ResponseWriter, r *http.Request) {
	port, err := strconv.Atoi(r.PathValue("port"))
	if err != nil || port < 1 || port > 65535 {
		http.Error(w, "port must be a number from 1 to 65535", http.StatusBadRequest)
		return
	}
	target := net.JoinHostPort(a.cfg.Address, strconv.Itoa(port))
	up, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\n"); err != nil {
		conn.Close()
		up.Close()
		return
	}
	splice(conn, brw.Reader, up)
}

// splice copies bytes both ways until both directions have ended, passing
// each half-close on so that protocols relying on it (SSH's EOF) work.
func splice(a net.Conn, aReader io.Reader, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(b, aReader)
		closeWrite(b)
	}()
	go func() {
		defer wg.Done()
		io.Copy(a, b)
		closeWrite(a)
	}()
	wg.Wait()
	a.Close()
	b.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// tail keeps the last max bytes written to it: enough of sshd's output to
// say why it stopped.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

// newID returns a random id in the form of an SSM command id.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
