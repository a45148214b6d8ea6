package upstreams

import (
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

// Write coalescing limits of frameWriter.
const (
	// maxQueuedFrames is how many bytes may wait behind a write in progress
	// before Write blocks (backpressure on a child that stops reading, as a
	// full pipe gave before).
	maxQueuedFrames = 1 << 20
	// maxSpareFrames is the largest buffer kept for reuse after a write.
	maxSpareFrames = 64 << 10
	// closeFlush bounds how long Close waits for a write in progress (and the
	// frames queued behind it) before it closes the pipe.
	closeFlush = time.Second
)

// frameWriter is the stdin of a stdio upstream: each Write is one whole
// frame.
//
// Write swaps the placeholder token for the caller's bytes right away, into
// the outgoing buffer (rawParams: the bytes sent are the bytes registered,
// whatever happens to the token afterwards). Writes are coalesced (issue 7):
// while one caller is writing (it yields once first, so that a burst can
// form), the frames of the others are queued, in call order, and that caller
// writes them all before it returns. The others return at once; a burst of
// concurrent calls costs one write here and one read in the child.
//
// A write error is sticky: it is reported once to onError (the session is
// then lost and restarted, which fails the calls in flight, queued frames
// included) and returned by every later Write. Methods are safe for
// concurrent use.
type frameWriter struct {
	w       io.WriteCloser
	raw     *rawParams
	onError func(error) // the first write error; may be nil

	mu      sync.Mutex
	space   sync.Cond     // signalled when the writing caller takes the queue (L is &mu)
	queue   []byte        // frames waiting for the writing caller
	spare   []byte        // a written buffer, reused for the next queue
	writing bool          // a caller is writing; it also writes queue
	idle    chan struct{} // closed when writing ends, if Close waits for it
	closed  bool          // Close was called: no more frames
	err     error         // the first write error
}

func newFrameWriter(w io.WriteCloser, raw *rawParams, onError func(error)) *frameWriter {
	f := &frameWriter{w: w, raw: raw, onError: onError}
	f.space.L = &f.mu
	return f
}

// Write sends the frame p with its token substituted, or queues it behind
// the write in progress.
func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	for f.writing && len(f.queue) > maxQueuedFrames && f.err == nil && !f.closed {
		f.space.Wait()
	}
	switch {
	case f.err != nil:
		err := f.err
		f.mu.Unlock()
		return 0, err
	case f.closed:
		f.mu.Unlock()
		return 0, os.ErrClosed
	}
	f.queue = f.raw.appendSubstituted(f.queue, p)
	if f.writing {
		f.mu.Unlock()
		return len(p), nil // the writing caller sends it, in order
	}
	f.writing = true
	// Let the goroutines that are ready to run (under load, other calls
	// about to send their frames) queue behind this one before the syscall:
	// at 64 concurrent calls this cut the writes to a child to about a
	// quarter. With nothing else runnable it returns at once.
	f.mu.Unlock()
	runtime.Gosched()
	f.mu.Lock()
	var failed, own error // own: the write that carried p failed
	for first := true; len(f.queue) > 0 && f.err == nil; first = false {
		b := f.queue
		f.queue, f.spare = f.spare[:0], nil
		f.space.Broadcast()
		f.mu.Unlock()
		_, err := f.w.Write(b)
		f.mu.Lock()
		if cap(b) <= maxSpareFrames {
			f.spare = b[:0]
		}
		if err != nil {
			f.err, failed = err, err
			if first {
				own = err
			}
		}
	}
	f.queue = f.queue[:0]
	if cap(f.queue) > maxSpareFrames {
		f.queue = nil // do not keep a burst's buffer
	}
	f.writing = false
	f.space.Broadcast()
	if f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
	if failed != nil && f.onError != nil {
		f.onError(failed)
	}
	if own != nil {
		return 0, own
	}
	return len(p), nil
}

// Close stops accepting frames, waits (bounded by closeFlush) for a write
// in progress and the frames queued behind it, then closes the pipe, which
// also ends a write blocked on a child that does not read.
func (f *frameWriter) Close() error {
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
		t := time.NewTimer(closeFlush)
		select {
		case <-idle:
		case <-t.C:
		}
		t.Stop()
	}
	return f.w.Close()
}
