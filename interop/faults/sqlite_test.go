package faults_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size (mount's syntax, e.g. 16m) on a new
// directory and unmounts and removes it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireFaults(t, "mount", "umount")
	dir := tempDir(t, "disk", func(old string) { exec.Command("umount", "-l", old).Run() })
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Fatalf("mount a tmpfs on %s: %v %s", dir, err, out)
	}
	t.Cleanup(func() {
		// Lazy, so that a process still holding a file cannot keep it mounted.
		exec.Command("umount", "-l", dir).Run()
		os.Remove(dir)
	})
	return dir
}

// fill writes a file in dir until the file system refuses with ENOSPC and
// returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
			}
			break
		}
	}
	// The last partial chunk may have left a few bytes: take them too.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// The SQLite file's disk full under refresh load: rotations cannot be
// written, so refreshes answer 503 unavailable; once space is freed they
// go on without a restart of latchkey, and no session is lost.
func TestSQLiteDiskFull(t *testing.T) {
	requireFaults(t)
	dir := mountTmpfs(t, "16m")
	srv := startNode(t, nil, "127.0.0.1:0", newSecret(), "--store", "sqlite:"+filepath.Join(dir, "latchkey.db"))
	var filler string
	r := underLoad(t, srv, 16, outage{
		down:    func(t *testing.T) { filler = fill(t, dir) },
		up:      func(t *testing.T) { os.Remove(filler) },
		refuses: true,
	})
	if r.lost > 0 {
		t.Errorf("%d sessions lost to a full disk", r.lost)
	}
}
