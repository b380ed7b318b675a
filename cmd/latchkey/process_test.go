package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

// childEnv makes the test binary act as `latchkey serve`: the multi-node tests
// start real separate processes of it.
const childEnv = "LATCHKEY_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if raw := os.Getenv(childEnv); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(exitCode(err, os.Stderr))
	}
	os.Exit(m.Run())
}

// startProcess runs `latchkey serve ARGS` as a separate OS process and returns
// its URL; the process gets SIGTERM when the test ends.
func startProcess(t *testing.T, args []string, env map[string]string) string {
	t.Helper()
	url, _ := startProcessCmd(t, args, env)
	return url
}

// startProcessCmd is startProcess that also returns the process, for a test
// that kills it.
func startProcessCmd(t *testing.T, args []string, env map[string]string) (string, *exec.Cmd) {
	t.Helper()
	full, _ := json.Marshal(append([]string{"serve", "--addr", "127.0.0.1:0"}, args...))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(full))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &testenv.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			return m[1], cmd
		}
		select {
		case err := <-exited:
			t.Fatalf("serve process exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve process did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
