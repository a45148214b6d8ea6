package upstreams

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// stderrTail is how much of a child's stderr is kept for error messages.
const stderrTail = 4096

// dialStdio spawns the child and connects to it over pipes we own
// (stdioConn).
//
// Why not mcp-go's stdio transport: its Stdio.Close calls cmd.Wait itself
// and only signals the direct child, so an exit watcher of our own (prompt
// death detection even when a grandchild holds stdout open) and our staged
// process-group stop would race with it on the same exec.Cmd; and it
// decodes every line into its own types and encodes every frame by
// reflection, which cost more than anything else in a tool call and would
// not let params and notifications pass byte for byte. The process (env,
// Dir, group, Wait, stop) and the framing are entirely ours.
func (u *Upstream) dialStdio() (*session, error) {
	p, err := startProcess(&u.spec, u.log)
	if err != nil {
		return nil, err
	}
	s := newSession(u)
	s.proc = p
	c, err := newStdioConn(p.stdout, p.stdin, s.wire(), s.markLost)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("start transport: %w", err)
	}
	s.c = c
	return s, nil
}

// process is one child with its own process group.
type process struct {
	pid    int
	stdin  *os.File // parent's write end
	stdout *os.File // parent's read end

	exited  chan struct{} // closed after cmd.Wait returned
	waitErr error         // written before exited is closed

	stderr     *os.File      // parent's read end
	stderrDone chan struct{} // closed when the stderr reader ended
	tail       tailBuffer

	job uintptr // Windows: the job object holding the child's tree (0 elsewhere)
}

// startProcess builds and starts the child: explicit environment, Dir, its
// own process group, and pipes whose parent ends we own (so cmd.Wait never
// closes them under the transport's reader).
func startProcess(spec *Spec, log *slog.Logger) (*process, error) {
	cmd := exec.Command(spec.Command, spec.Args...)
	cmd.Env = childEnv(spec.Environ, spec.Env)
	cmd.Dir = spec.Dir
	// A process group of its own, so that stop signals the child's tree.
	cmd.SysProcAttr = sysProcAttr()

	var files []*os.File // stdin's, stdout's and stderr's read and write ends
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	for _, name := range []string{"stdin", "stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%s pipe: %w", name, err)
		}
		files = append(files, r, w)
	}
	inR, inW, outR, outW, errR, errW := files[0], files[1], files[2], files[3], files[4], files[5]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW

	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("start %q: %w", spec.Command, err)
	}
	// The child has its copies; ours would keep EOF from ever arriving.
	_ = inR.Close()
	_ = outW.Close()
	_ = errW.Close()

	p := &process{
		pid:        cmd.Process.Pid,
		stdin:      inW,
		stdout:     outR,
		stderr:     errR,
		exited:     make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	contain(p, log)
	log.Debug("upstream process started", "pid", p.pid, "command", spec.Command)
	go func() { // joined by stop (waits for exited)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.readStderr(log) // joined by stop (waits for stderrDone)
	return p, nil
}

// readStderr drains the child's stderr (a full pipe would block the child),
// logging lines at debug and keeping the tail.
func (p *process) readStderr(log *slog.Logger) {
	defer close(p.stderrDone)
	br := bufio.NewReaderSize(p.stderr, 4096)
	debug := log.Enabled(context.Background(), slog.LevelDebug)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			p.tail.Write(line)
			if debug {
				log.Debug("upstream stderr", "pid", p.pid, "line", strings.TrimRight(string(line), "\r\n"))
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// stop ends the child in stages, for the whole process group: close stdin →
// wait grace → terminate the group → wait term → kill the group → reap. Then
// it kills what is left of the group (a grandchild may outlive the leader
// and hold stdout open), closes our pipe ends and joins the stderr reader.
// Safe to call more than once.
func (p *process) stop(grace, term time.Duration, log *slog.Logger) {
	_ = p.stdin.Close()
	if !waitChan(p.exited, grace) {
		log.Debug("upstream did not exit after stdin closed; terminating its process group", "pid", p.pid)
		terminateGroup(p)
		if !waitChan(p.exited, term) {
			log.Warn("upstream did not exit after terminate; killing its process group", "pid", p.pid)
			killGroup(p)
			if !waitChan(p.exited, term) {
				log.Error("upstream process did not exit after kill", "pid", p.pid)
			}
		}
	}
	killGroup(p)
	waitGroupGone(p, time.Second)
	_ = p.stdout.Close()
	if !waitChan(p.stderrDone, time.Second) {
		_ = p.stderr.Close() // a process outside the group still holds it
		<-p.stderrDone
	}
	// Also when the reader ended at EOF (the usual case): otherwise only
	// the *os.File finalizer would close it, at some later GC (docs/faults.md, goal
	// G9 and invariant I5).
	_ = p.stderr.Close()
}

// describe returns the exit status and the stderr tail, for error messages.
// Call after stop.
func (p *process) describe() string {
	status := "still running"
	select {
	case <-p.exited:
		status = "exit status 0"
		if p.waitErr != nil {
			status = p.waitErr.Error()
		}
	default:
	}
	if t := p.tail.String(); t != "" {
		return status + "; stderr: " + t
	}
	return status
}

func waitChan(c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

// tailBuffer keeps the last stderrTail bytes written. Safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - stderrTail; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

// String returns the tail trimmed, as valid UTF-8.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.ToValidUTF8(strings.TrimSpace(string(t.buf)), "\uFFFD")
}

// childEnv returns the allow-listed part of environ plus extra, without any
// hub secret (HubSecret) in either: whatever built extra, a child never gets
// the hub's API key, client tokens or upstream authorization.
func childEnv(environ, extra []string) []string {
	env := slices.DeleteFunc(WithoutHubSecrets(environ), func(kv string) bool {
		k, _, ok := strings.Cut(kv, "=")
		return !ok || k == "" || !envAllowed(k)
	})
	return append(env, WithoutHubSecrets(extra)...)
}

// WithoutHubSecrets returns environ ("K=V") without the hub's own secrets
// (HubSecret): the environment of a child the hub starts that is not an
// upstream (the browser opener, taskkill), which otherwise inherits the
// hub's whole environment.
func WithoutHubSecrets(environ []string) []string {
	return slices.DeleteFunc(append([]string{}, environ...), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return HubSecret(k)
	})
}

// hubSecretNames and hubSecretPrefixes are the one list of the hub's own
// secrets: the Sigil API key, the bearer tokens of the --listen front
// (SIGIL_HUB_TOKEN_<NAME>) and the Authorization header of a --remote
// upstream. Both the stripping of a child's environment (childEnv, the CLI's
// wrapped environment) and the check of ${VAR} references in a config
// file's env and headers use it (through HubSecret).
var (
	hubSecretNames    = []string{"SIGIL_API_KEY", "SIGIL_UPSTREAM_AUTH"}
	hubSecretPrefixes = []string{"SIGIL_HUB_TOKEN_"}
)

// HubSecret reports whether the environment variable name is one of the
// hub's own secrets, which never reach an upstream. Case is ignored (Windows
// variable names are case-insensitive, and refusing a variant costs
// nothing).
func HubSecret(name string) bool {
	n := strings.ToUpper(name)
	return slices.Contains(hubSecretNames, n) ||
		slices.ContainsFunc(hubSecretPrefixes, func(p string) bool { return strings.HasPrefix(n, p) })
}
