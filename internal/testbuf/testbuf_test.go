package testbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestBufferConcurrentWrites: writes from many goroutines all land, whole,
// and are counted, while another goroutine reads.
func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	const writers, each = 8, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = b.String()
				_ = b.Len()
			}
		}
	}()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if n, err := b.Write([]byte("line\n")); n != 5 || err != nil {
					t.Errorf("Write = %d, %v", n, err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if got := strings.Count(b.String(), "line\n"); got != writers*each {
		t.Fatalf("%d lines, want %d", got, writers*each)
	}
	if b.Writes() != writers*each || b.Len() != 5*writers*each {
		t.Fatalf("Writes() = %d, Len() = %d", b.Writes(), b.Len())
	}
	c := b.Bytes()
	c[0] = 'X'
	if strings.HasPrefix(b.String(), "X") {
		t.Fatal("Bytes aliases the buffer")
	}
}
