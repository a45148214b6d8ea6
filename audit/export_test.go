package audit

import "io"

// SyncCount reports how many fsyncs of the owned file have succeeded.
func SyncCount(l *Log) int64 { return l.syncs.Load() }

// NewNamed is New with the name errors use, to test messages that name the
// file without a real full disk.
func NewNamed(w io.Writer, name string, o Options) *Log {
	l := newLog(w, name, o)
	go l.run()
	return l
}
