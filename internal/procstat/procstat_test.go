package procstat

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestChildrenAndCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc: Linux only")
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if kids := Children(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Fatalf("Children(self) = %v, want it to contain %d", kids, cmd.Process.Pid)
	}
	deadline := time.Now().Add(20 * time.Second)
	for CPU(cmd.Process.Pid) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("CPU of a busy child stayed 0")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if Children(-1) != nil || CPU(-1) != 0 {
		t.Fatal("an unknown pid must give nil and 0")
	}
}
