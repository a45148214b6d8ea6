package framing

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrTooLong reports a line over the Reader's cap.
var ErrTooLong = errors.New("message too large")

// Mode is what a Reader does with a line over its cap, and with a last line
// that has no line break.
type Mode int

const (
	// Resync is for a peer that may be mistaken but keeps talking (the
	// client): a line over the cap is read to its end and skipped, Next
	// reports it as ErrTooLong and the following Next goes on with the next
	// line (docs/faults.md A11–A13); a last line without a line break counts; a
	// UTF-8 byte order mark at the very start is dropped.
	Resync Mode = iota
	// Strict is for a peer that must follow the protocol (an upstream): a
	// line over the cap is ErrTooLong as soon as the cap is passed, and
	// the stream is unusable after it (an endless line is never read to
	// its end); a last line without a line break is not a message (the
	// peer died in the middle of it) and Next reports io.EOF.
	Strict
)

// Reader reads newline-delimited messages with a size cap. It is not safe
// for concurrent use.
type Reader struct {
	br    *bufio.Reader
	max   int
	mode  Mode
	first bool
}

// NewReader reads lines of at most max bytes (without the line break) from
// r.
func NewReader(r io.Reader, max int, mode Mode) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), max: max, mode: mode, first: true}
}

// Next returns the next line that is not blank, without its line break and
// trailing whitespace, in a buffer of its own. At the end of the stream it
// returns io.EOF (or the underlying reader's error).
//
// A line longer than the read buffer is kept as the pieces read, joined
// once at its end: at most twice its size is held, and nothing more than the
// cap for a line over it, which is dropped as soon as it passes the cap
// (docs/faults.md G7).
func (lr *Reader) Next() ([]byte, error) {
	for {
		line, err := lr.read()
		if err != nil {
			return nil, err
		}
		if lr.first && lr.mode == Resync {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		lr.first = false
		line = bytes.TrimRight(line, "\r\n \t")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(line) > lr.max {
			return nil, ErrTooLong
		}
		return line, nil
	}
}

// read returns the next line with its line break, or the bytes before the
// end of the stream (Resync).
func (lr *Reader) read() ([]byte, error) {
	var frags [][]byte
	n := 0
	tooLong := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if !tooLong {
			// +2: the line break, "\r\n", is not part of the cap.
			if n+len(chunk) > lr.max+2 {
				if lr.mode == Strict {
					return nil, ErrTooLong
				}
				tooLong, frags = true, nil
			} else if err == bufio.ErrBufferFull {
				frags = append(frags, bytes.Clone(chunk))
				n += len(chunk)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case tooLong:
			return nil, ErrTooLong
		case err == io.EOF && lr.mode == Resync && n+len(chunk) > 0:
			// A last line without a line break still counts.
		case err != nil:
			return nil, err
		}
		return bytes.Join(append(frags, chunk), nil), nil
	}
}
