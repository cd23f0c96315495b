package sandbox

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// reaper starts and collects every child of the host's init.
//
// As PID 1 the init inherits every orphan in the host and must wait for
// each; but a wait for any child would steal the status that exec.Cmd.Wait
// is waiting for. So no process here calls Cmd.Wait: the reaper waits for
// all of them and hands the status of the ones it started to whoever asked.
//
// Every start also happens on one OS thread, the init's main thread, whose
// capability bounding set is reduced (see dropCapabilities): a forked
// child inherits the bounding set of the thread that forked it, and Go
// would otherwise fork from whichever thread a goroutine happens to be on.
type reaper struct {
	// mu is held across Start and registration, and across each wait, so a
	// child cannot be reaped before its waiter is registered.
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	spawns  chan spawn
}

type spawn struct {
	cmd   *exec.Cmd
	reply chan spawned
}

type spawned struct {
	exited <-chan syscall.WaitStatus
	err    error
}

func newReaper() *reaper {
	return &reaper{waiters: make(map[int]chan syscall.WaitStatus), spawns: make(chan spawn)}
}

// start starts cmd on the spawning thread and returns a channel that
// receives its wait status. Callers must not call cmd.Wait.
func (r *reaper) start(cmd *exec.Cmd) (<-chan syscall.WaitStatus, error) {
	s := spawn{cmd: cmd, reply: make(chan spawned, 1)}
	r.spawns <- s
	res := <-s.reply
	return res.exited, res.err
}

// spawnLoop serves start; it must run on the thread it was locked to.
func (r *reaper) spawnLoop() {
	for s := range r.spawns {
		r.mu.Lock()
		err := s.cmd.Start()
		var ch chan syscall.WaitStatus
		if err == nil {
			ch = make(chan syscall.WaitStatus, 1)
			r.waiters[s.cmd.Process.Pid] = ch
		}
		r.mu.Unlock()
		s.reply <- spawned{exited: ch, err: err}
	}
}

func (r *reaper) loop() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	for {
		r.reapAll()
		<-sigs
	}
}

// reapAll waits for every child that has exited; SIGCHLD coalesces, so one
// signal may stand for many.
func (r *reaper) reapAll() {
	for {
		var ws syscall.WaitStatus
		r.mu.Lock()
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid > 0 {
			if ch, ok := r.waiters[pid]; ok {
				ch <- ws
				delete(r.waiters, pid)
			}
		}
		r.mu.Unlock()
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

// exitCode is what the SSM agent reports for a wait status: the exit status,
// or -1 for a process killed by a signal (as Go's ExitCode reports it).
func exitCode(ws syscall.WaitStatus) int {
	if ws.Exited() {
		return ws.ExitStatus()
	}
	return -1
}
