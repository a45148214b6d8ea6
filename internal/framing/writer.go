package framing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

// Write coalescing limits.
const (
	// maxQueued is how many bytes may wait behind a write in progress
	// before Write blocks (backpressure on a reader that stops reading, as
	// a full pipe gives).
	maxQueued = 1 << 20
	// maxSpare is the largest buffer kept for reuse after a write.
	maxSpare = 64 << 10
	// closeFlush bounds how long Close waits for a write in progress (and
	// the messages queued behind it) before it closes the stream.
	closeFlush = time.Second
)

// Writer writes one message per line. Methods are safe for concurrent use.
//
// Writes are coalesced: while one caller is writing (it yields once first,
// so that a burst can form), the messages of the others are queued, in call
// order, and that caller writes them all before it returns. The others
// return at once, so a message is on the wire only once the writing caller
// is done (Flush waits for that), and a burst of concurrent messages costs
// one write here and one read on the other side instead of one per message.
//
// A write error is sticky: it is reported once to onError and returned by
// the writing caller and every later Write; later messages are dropped.
type Writer struct {
	w       io.Writer
	onError func(error)

	mu      sync.Mutex
	space   sync.Cond     // signalled when the writing caller takes the queue or ends (L is &mu)
	queue   []byte        // messages waiting for the writing caller
	spare   []byte        // a written buffer, reused for the next queue
	writing bool          // a caller is writing; it also writes queue
	idle    chan struct{} // closed when writing ends, if Close waits for it
	closed  bool          // Close was called: no more messages
	err     error         // the first write error
}

// NewWriter returns a Writer to w. onError, if not nil, gets the first
// write error (the stream is then unusable).
func NewWriter(w io.Writer, onError func(error)) *Writer {
	f := &Writer{w: w, onError: onError}
	f.space.L = &f.mu
	return f
}

// Write sends msg, one JSON value, followed by a line break, or queues it
// behind the write in progress. A msg holding line breaks (pretty-printed
// JSON from an HTTP body) is compacted first, so that a message is always
// exactly one line; JSON strings cannot hold a raw line break, so only
// whitespace is removed (escapes and number literals are kept as they
// are). The error is that of compacting msg, or the stream's first write
// error.
func (f *Writer) Write(msg []byte) error {
	if bytes.ContainsAny(msg, "\r\n") {
		var b bytes.Buffer
		if err := json.Compact(&b, msg); err != nil {
			return fmt.Errorf("compact outgoing message: %w", err)
		}
		msg = b.Bytes()
	}
	f.mu.Lock()
	for f.writing && len(f.queue) > maxQueued && f.err == nil && !f.closed {
		f.space.Wait()
	}
	switch {
	case f.err != nil:
		err := f.err
		f.mu.Unlock()
		return err
	case f.closed:
		f.mu.Unlock()
		return os.ErrClosed
	}
	f.queue = append(append(f.queue, msg...), '\n')
	if f.writing {
		f.mu.Unlock()
		return nil // the writing caller sends it, in order
	}
	f.writing = true
	// Let the goroutines that are ready to run (under load, other calls
	// about to send their messages) queue behind this one before the
	// syscall: at 64 concurrent calls this cut the writes to a child to
	// about a quarter. With nothing else runnable it returns at once.
	f.mu.Unlock()
	runtime.Gosched()
	f.mu.Lock()
	var failed error
	for len(f.queue) > 0 && f.err == nil {
		b := f.queue
		f.queue, f.spare = f.spare[:0], nil
		f.space.Broadcast()
		f.mu.Unlock()
		_, err := f.w.Write(b)
		f.mu.Lock()
		if cap(b) <= maxSpare {
			f.spare = b[:0]
		}
		if err != nil {
			f.err, failed = err, err
		}
	}
	f.queue = f.queue[:0]
	if cap(f.queue) > maxSpare {
		f.queue = nil // do not keep a burst's buffer
	}
	f.writing = false
	f.space.Broadcast()
	if f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	err := f.err
	f.mu.Unlock()
	if failed != nil && f.onError != nil {
		f.onError(failed)
	}
	return err
}

// Flush returns once every message written so far is on the wire (or the
// stream failed).
func (f *Writer) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.writing {
		f.space.Wait()
	}
}

// Close stops accepting messages, waits (bounded by closeFlush) for a write
// in progress and the messages queued behind it, then closes the stream if
// it is an io.Closer, which also ends a write blocked on a reader that does
// not read.
func (f *Writer) Close() error {
	f.mu.Lock()
	f.closed = true
	f.space.Broadcast()
	var idle chan struct{}
	if f.writing {
		if f.idle == nil {
			f.idle = make(chan struct{})
		}
		idle = f.idle
	}
	f.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-time.After(closeFlush):
		}
	}
	if c, ok := f.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
