package front

import (
	"io"
	"sync"

	"github.com/sigilcore/sigil-hub/internal/framing"
)

// lineReader is the client pipe's line reader: a size cap with
// resynchronisation (framing.Resync; docs/faults.md cases 11–13).
type lineReader struct{ r *framing.Reader }

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: framing.NewReader(r, max, framing.Resync)}
}

// errTooLarge reports a line over the cap; the reader has skipped it.
var errTooLarge = framing.ErrTooLong

// next returns the next non-empty line without its terminator, or
// errTooLarge for a line over the cap (skipped to its newline).
func (lr *lineReader) next() ([]byte, error) { return lr.r.Next() }

// lineWriter is the client pipe's writer: framing.Writer (one message per
// line, concurrent writes coalesced) to w. Safe for concurrent use; the
// zero value with w set is ready.
type lineWriter struct {
	w    io.Writer
	once sync.Once
	fw   *framing.Writer
}

func (lw *lineWriter) out() *framing.Writer {
	lw.once.Do(func() { lw.fw = framing.NewWriter(lw.w, nil) })
	return lw.fw
}

// write sends msg on a line of its own (compacted if it holds line breaks),
// or queues it behind the write in progress. An error is the first write
// error of the stream (later messages are dropped) or msg's own failure to
// compact.
func (lw *lineWriter) write(msg []byte) error { return lw.out().Write(msg) }

// flush returns once every message written so far is on the wire (or the
// stream failed).
func (lw *lineWriter) flush() { lw.out().Flush() }
