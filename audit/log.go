package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is wrapped by the error Write returns after Close.
var ErrClosed = errors.New("audit log closed")

// Options configures a Log. The zero value is ready to use.
type Options struct {
	// WriteTimeout is how long Write may wait for the disk (queueing behind
	// other records included) before it gives up and reports an error, so a
	// stalled disk blocks calls fail-closed instead of hanging them. Close
	// also waits at most this long for a stalled write. If zero or negative,
	// 5s is used.
	WriteTimeout time.Duration
	// SyncEvery is how often written records are fsync'd (Open only; a Log
	// from New never syncs). If zero, 1s is used; if negative, records are
	// fsync'd only on Close.
	SyncEvery time.Duration
	// Logger receives write failures, recoveries and fsync errors (never
	// record contents). If nil, nothing is logged.
	Logger *slog.Logger
}

const (
	defaultWriteTimeout = 5 * time.Second
	defaultSyncEvery    = time.Second
)

// Log appends audit records, one JSON line each. Write and Close are safe for
// concurrent use; every record goes through one writer goroutine, which Close
// stops and waits for.
type Log struct {
	name    string // the file path, for error messages
	w       io.Writer
	file    *os.File // non-nil when the Log owns (syncs, closes) the file
	timeout time.Duration
	every   time.Duration
	log     *slog.Logger

	reqs chan *request // records to the writer goroutine; closed by Close
	done chan struct{} // closed when the writer goroutine has returned

	mu       sync.Mutex // guards closed; held while registering in inflight
	closed   bool
	inflight sync.WaitGroup // Write calls between the closed check and return

	syncs atomic.Int64 // successful fsyncs (read by tests)

	// Touched only by the writer goroutine until done is closed.
	partial  bool  // the output may end in a partial line
	dirty    bool  // written since the last successful sync
	failing  bool  // the last write failed (for logging transitions)
	syncErr  error // the last fsync failed; cleared by a successful one
	closeErr error // what Close reports
}

// request is one encoded line and where the writer reports its result.
type request struct {
	line []byte
	done chan error // buffered: the writer never blocks on a departed Write
}

// Open opens (creating it with mode 0600 if needed) the audit file at path
// for appending and returns a Log that owns it: records are fsync'd every
// o.SyncEvery and on Close, which closes the file. path must name a regular
// file; a directory, device, FIFO or socket is refused. An existing file
// readable by others is used as is, with a warning.
func Open(path string, o Options) (*Log, error) {
	if path == "" {
		return nil, errors.New("audit log: empty path")
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		// Checked before opening: opening a FIFO for writing would block.
		return nil, fmt.Errorf("audit log %q: not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("audit log %q: not a regular file (%v)", path, fi.Mode().Type())
	}
	l := newLog(f, path, o)
	l.file = f
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		l.log.Warn("audit log is accessible to other users; consider chmod 600",
			"path", path, "mode", fi.Mode().Perm().String())
	}
	if fi.Size() > 0 {
		// A previous run may have died mid-line: start on a fresh line so
		// the first record of this run stays parseable.
		l.partial = !endsInNewline(path, fi.Size())
	}
	go l.run()
	return l, nil
}

// endsInNewline reports whether the file's last byte is '\n' (true when it
// cannot tell, so a readable-only-by-writer file gets no stray blank line).
func endsInNewline(path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// New returns a Log writing to w, for tests and for stderr. It never syncs
// or closes w; Close only stops the writer goroutine. w need not be safe for
// concurrent use: only the Log's writer goroutine calls it.
func New(w io.Writer, o Options) *Log {
	if w == nil {
		panic("audit.New: nil writer")
	}
	name := fmt.Sprintf("%T", w)
	if f, ok := w.(*os.File); ok {
		name = f.Name()
	}
	l := newLog(w, name, o)
	go l.run()
	return l
}

func newLog(w io.Writer, name string, o Options) *Log {
	l := &Log{
		name:    name,
		w:       w,
		timeout: o.WriteTimeout,
		every:   o.SyncEvery,
		log:     o.Logger,
		reqs:    make(chan *request),
		done:    make(chan struct{}),
	}
	if l.timeout <= 0 {
		l.timeout = defaultWriteTimeout
	}
	if l.every == 0 {
		l.every = defaultSyncEvery
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l
}

// Write appends r as one line. It returns once the line has been handed to
// the operating system (not necessarily fsync'd), or with an error when the
// record could not be written: the log is closed, the write failed (a full
// disk, say), the disk did not accept it within Options.WriteTimeout, or ctx
// ended first. Every error names the file and means the caller must block
// the call (fail closed). A record whose Write timed out may still be
// written later. Safe for concurrent use; lines never interleave.
func (l *Log) Write(ctx context.Context, r Record) error {
	line, err := encodeLine(r, time.Now())
	if err != nil {
		return fmt.Errorf("audit log %q: %v", l.name, err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("audit log %q: %w; tool calls are blocked", l.name, ErrClosed)
	}
	l.inflight.Add(1)
	l.mu.Unlock()
	defer l.inflight.Done()

	if err := ctx.Err(); err != nil {
		return l.abandoned(err)
	}
	timer := time.NewTimer(l.timeout)
	defer timer.Stop()
	req := &request{line: line, done: make(chan error, 1)}
	select {
	case l.reqs <- req:
	case <-timer.C:
		return l.stalled()
	case <-ctx.Done():
		return l.abandoned(ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-timer.C:
		return l.stalled()
	case <-ctx.Done():
		return l.abandoned(ctx.Err())
	}
}

func (l *Log) stalled() error {
	return fmt.Errorf("audit log %q: write not completed within %v (disk stalled?); tool calls are blocked", l.name, l.timeout)
}

func (l *Log) abandoned(err error) error {
	return fmt.Errorf("audit log %q: record not written: %w; the call is blocked", l.name, err)
}

// Close stops accepting records, waits for in-flight Writes, writes what is
// queued, fsyncs and closes the file (Open) and stops the writer goroutine.
// If the disk is stalled, Close gives up after Options.WriteTimeout and
// returns an error, leaving the file open and the writer goroutine blocked
// in the operating system. Safe for concurrent use; a second Close returns
// an error wrapping ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("audit log %q: %w", l.name, ErrClosed)
	}
	l.closed = true
	l.mu.Unlock()
	l.inflight.Wait() // bounded: each Write returns within WriteTimeout
	close(l.reqs)     // no sender is left
	timer := time.NewTimer(l.timeout)
	defer timer.Stop()
	select {
	case <-l.done:
		return l.closeErr
	case <-timer.C:
		return fmt.Errorf("audit log %q: close: a write is still blocked after %v (disk stalled?); records may be lost", l.name, l.timeout)
	}
}

// run is the writer goroutine: the only caller of l.w and of fsync.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.file != nil && l.every > 0 {
		t := time.NewTicker(l.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case req, ok := <-l.reqs:
			if !ok {
				l.closeErr = l.finish()
				return
			}
			req.done <- l.write(req.line)
		case <-tick:
			if l.dirty || l.syncErr != nil {
				l.sync()
			}
		}
	}
}

// write writes one line with one Write call.
func (l *Log) write(line []byte) error {
	if l.syncErr != nil && !l.sync() {
		// Records already written may not be durable: do not pretend.
		return l.failed(fmt.Errorf("audit log %q: fsync failed: %v; tool calls are blocked until the audit log is writable", l.name, l.syncErr))
	}
	if l.partial {
		// A failed write may have left part of a line: start afresh.
		line = append([]byte{'\n'}, line...)
	}
	n, err := l.w.Write(line)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if n > 0 {
		l.dirty = true
	}
	if err != nil {
		l.partial = l.partial || n > 0
		return l.failed(fmt.Errorf("audit log %q: write failed: %w; tool calls are blocked until the audit log is writable", l.name, err))
	}
	l.partial = false
	if l.failing {
		l.failing = false
		l.log.Info("audit log writable again; tool calls proceed", "path", l.name)
	}
	return nil
}

// failed logs the first of a run of failures and returns err.
func (l *Log) failed(err error) error {
	if !l.failing {
		l.failing = true
		l.log.Error("audit log write failed; tool calls are blocked", "path", l.name, "err", err)
	}
	return err
}

// sync fsyncs the owned file and reports whether it succeeded.
func (l *Log) sync() bool {
	if l.file == nil {
		return true
	}
	if err := l.file.Sync(); err != nil {
		if l.syncErr == nil {
			l.log.Error("audit log fsync failed", "path", l.name, "err", err)
		}
		l.syncErr = err
		return false
	}
	l.syncErr, l.dirty = nil, false
	l.syncs.Add(1)
	return true
}

// finish fsyncs and closes the owned file.
func (l *Log) finish() error {
	if l.file == nil {
		return nil
	}
	var errs []error
	if !l.sync() {
		errs = append(errs, fmt.Errorf("audit log %q: fsync on close: %v", l.name, l.syncErr))
	}
	if err := l.file.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit log %q: close: %v", l.name, err))
	}
	return errors.Join(errs...)
}
