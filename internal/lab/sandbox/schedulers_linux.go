package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// schedulers are the daemons Config.Schedulers starts, as a Debian host's
// systemd starts cron.service and atd.service: in the foreground, so the
// init is their parent and restarts them if they die.
var schedulers = []struct {
	name, path string
	args       []string
}{
	{"cron", "/usr/sbin/cron", []string{"-f"}},
	{"atd", "/usr/sbin/atd", []string{"-f"}},
}

// missingSchedulers names the scheduler daemons this machine lacks, with the
// Debian package that brings each.
func missingSchedulers(root string) []string {
	var missing []string
	for _, s := range schedulers {
		if _, err := os.Stat(filepath.Join(root, s.path)); err != nil {
			pkg := s.name
			if s.name == "atd" {
				pkg = "at"
			}
			missing = append(missing, s.path+" (install the "+pkg+" package)")
		}
	}
	return missing
}

// startSchedulers keeps each scheduler running for the life of the host.
// Their own words go to /var/log/<name>.log, since the host has no syslog.
func (a *agent) startSchedulers() {
	for _, s := range schedulers {
		go func() {
			const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
			pause := minPause
			for {
				started := time.Now()
				a.runDaemon(s.name, s.path, s.args...)
				if time.Since(started) > 10*time.Second {
					pause = minPause
				}
				time.Sleep(pause)
				pause = min(2*pause, maxPause)
			}
		}()
	}
}

// runDaemon runs one daemon until it exits, and notes how it ended in its
// log.
func (a *agent) runDaemon(name, path string, args ...string) {
	logPath := "/var/log/" + name + ".log"
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	defer log.Close()
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=" + defaultPath}
	cmd.Stdout, cmd.Stderr = log, log
	done, err := a.reaper.start(cmd)
	if err != nil {
		fmt.Fprintf(log, "%s: cannot start %s: %v\n", initName, path, err)
		return
	}
	ws := <-done
	cmd.Process.Release()
	fmt.Fprintf(log, "%s %s: %s exited with status %d\n", time.Now().UTC().Format(time.RFC3339), initName, name, exitCode(ws))
}
