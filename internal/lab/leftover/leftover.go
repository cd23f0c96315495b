// Package leftover is what tests use to prove that a revoked user leaves
// nothing behind that its UID owns. Leave has the granted user (no sudo)
// put something in every such place a hostile user would: a queued at
// job, a crontab, System V shared memory, a message queue and a semaphore
// set, a POSIX message queue, files in the world-writable directories, a
// process that outlives the login, and mail waiting in its spool. Owned
// then lists whatever a UID still owns afterwards, and Visible what another
// user can see of it.
//
// The hosts need the at, cron and util-linux tools and a mounted
// /dev/mqueue, as sandbox hosts with Config.Schedulers have.
package leftover

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Run runs a shell script on the host, as root or as the granted user over
// SSH, and returns what it printed. Tests make them from their own host
// helpers (labtest.OnHost and labtest.Login, say).
type Run func(script string) (string, error)

var (
	reUser = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	reUID  = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
)

// leave is what the granted user runs: one thing in every place its UID
// can own something outside its home.
const leave = `set -e
echo 'cp "$HOME/.profile" /tmp/stolen-by-at' | at now + 2 hours 2>/dev/null
echo '*/5 * * * * cp "$HOME/.profile" /tmp/stolen-by-cron' | crontab -
ipcmk -M 4096 >/dev/null
ipcmk -Q >/dev/null
ipcmk -S 1 >/dev/null
: >"/dev/mqueue/leftover-$(id -u)"
: >"/dev/shm/leftover-$(id -u)"
: >"/var/tmp/leftover-$(id -u)"
nohup setsid sleep 10007 </dev/null >/dev/null 2>&1 &
echo left
`

// Leave has user leave something everywhere (asUser runs as that user),
// delivers it mail as an MTA would (asRoot), and checks that Owned finds
// each of them, so that a later empty Owned means they were removed.
func Leave(asUser, asRoot Run, uid, user string) error {
	if !reUser.MatchString(user) || !reUID.MatchString(uid) {
		return fmt.Errorf("leftover: user %q or uid %q is not valid", user, uid)
	}
	if out, err := asUser(leave); err != nil || out != "left" {
		return fmt.Errorf("leftover: %s could not leave things behind: %v: %s", user, err, out)
	}
	if _, err := asRoot("install -o " + user + " -g mail -m 0600 /dev/null /var/mail/" + user +
		"\nprintf 'From root\\nSubject: left behind\\n\\nfor " + user + "\\n' >> /var/mail/" + user); err != nil {
		return fmt.Errorf("leftover: delivering mail to %s: %w", user, err)
	}
	// The process forks before sleep is exec'd: wait for it by name.
	if _, err := asRoot("for i in $(seq 100); do pgrep -u " + uid + " -x sleep >/dev/null && exit 0; sleep 0.1; done; exit 1"); err != nil {
		return fmt.Errorf("leftover: the background process of %s never started: %w", user, err)
	}
	found, err := Owned(asRoot, uid, user)
	if err != nil {
		return err
	}
	var missing []string
	for _, kind := range []string{"process", "at job", "crontab", "System V shm", "System V msg", "System V sem", "POSIX message queue", "file /dev/shm/", "file /var/tmp/", "mail"} {
		if !hasPrefix(found, kind) {
			missing = append(missing, kind)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("leftover: after Leave, uid %s owns %q but not %s; the check below would prove nothing", uid, found, strings.Join(missing, ", "))
	}
	return nil
}

func hasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// owned lists, a line each, what uid (whose name was user) owns: its
// processes, System V IPC objects and POSIX message queues, its at jobs,
// crontab and mail, and its files wherever a user without sudo can write.
const owned = `uid=$1 user=$2
{ pgrep -U "$uid"; pgrep -u "$uid"; } | sort -u | sed 's/^/process /'
for kind in shm msg sem; do
	awk -v uid="$uid" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["uid"] == uid || $col["cuid"] == uid { print $2 }' "/proc/sysvipc/$kind" | sed "s/^/System V $kind /"
done
find /dev/mqueue -type f -uid "$uid" | sed 's/^/POSIX message queue /'
find /var/spool/cron/atjobs -type f -uid "$uid" | sed 's/^/at job /'
atq | awk -v user="$user" '$NF == user { print "at job " $1 }'
{ find /var/spool/cron/crontabs -type f -uid "$uid"; ls -d "/var/spool/cron/crontabs/$user" 2>/dev/null; } | sort -u | sed 's/^/crontab /'
{ find /var/mail -type f -uid "$uid"; ls -d "/var/mail/$user" 2>/dev/null; } | sort -u | sed 's/^/mail /'
find /tmp /var/tmp /dev/shm /run /home /var/lib -xdev -uid "$uid" 2>/dev/null | sed 's/^/file /'
`

// Owned lists what uid, whose user was user, still owns on the host
// (asRoot), one thing a line: "process 123", "at job 2", "crontab ...",
// "System V shm 0", "POSIX message queue ...", "mail ...", "file ...".
func Owned(asRoot Run, uid, user string) ([]string, error) {
	if !reUser.MatchString(user) || !reUID.MatchString(uid) {
		return nil, fmt.Errorf("leftover: user %q or uid %q is not valid", user, uid)
	}
	out, err := asRoot("set -- " + uid + " " + user + "\n" + owned)
	if err != nil {
		return nil, fmt.Errorf("leftover: listing what uid %s owns: %w", uid, err)
	}
	return lines(out), nil
}

// visible is what any user can see of others' jobs and IPC objects.
const visible = `atq
crontab -l 2>/dev/null
ipcs -m -q -s | grep '^0x'
ls -A /dev/mqueue
true
`

// Visible lists what the user asUser runs as sees of at jobs, its crontab,
// System V IPC objects and POSIX message queues; a new user on a clean
// host sees nothing.
func Visible(asUser Run) ([]string, error) {
	out, err := asUser(visible)
	if err != nil {
		return nil, fmt.Errorf("leftover: looking around as the new user: %w", err)
	}
	return lines(out), nil
}

// Clean is an error listing what a host still holds, or nil when found is
// empty.
func Clean(where string, found []string) error {
	if len(found) == 0 {
		return nil
	}
	return errors.New(where + " still holds: " + strings.Join(found, "; "))
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
