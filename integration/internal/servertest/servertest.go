// Package servertest starts real servers (redis-server, postgres) for the
// integration tests: it finds the binary, picks a loopback port, waits for
// the server to say it is ready, and stops it when the test ends.
package servertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary returns the path of the program name, looked up in PATH and then
// in the directories matching globs (such as "/usr/lib/postgresql/*/bin").
// When it is missing the test is skipped, with the package to install;
// when the environment variable CI is "true" it fails instead, since CI
// installs every server.
func Binary(tb testing.TB, name, aptPackage string, globs ...string) string {
	tb.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, g := range globs {
		dirs, err := filepath.Glob(g)
		if err != nil {
			tb.Fatal(err)
		}
		for i := len(dirs) - 1; i >= 0; i-- { // the highest version first
			path := filepath.Join(dirs[i], name)
			if _, err := exec.LookPath(path); err == nil {
				return path
			}
		}
	}
	where := "in PATH"
	if len(globs) > 0 {
		where = fmt.Sprintf("in PATH or %s", strings.Join(globs, ", "))
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s not found %s: CI must install the Debian package %s", name, where, aptPackage)
	}
	tb.Skipf("%s not found %s: install the Debian package %s to run this test (with CI=true it fails)", name, where, aptPackage)
	return ""
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, for
// a server that cannot be told to pick one and report it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs cmd, whose stdout and stderr it takes, and waits for a line
// of its output that contains ready. It fails the test if the process
// exits first or does not get ready within a minute. At the end of the
// test it sends stop to the process, waits for it to exit (killing it
// after ten seconds) and for every process that inherited its output (a
// forking server's children) to close it.
func Start(tb testing.TB, cmd *exec.Cmd, ready string, stop os.Signal) {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		tb.Fatal(err)
	}
	w.Close()

	var (
		mu  sync.Mutex // guards out
		out bytes.Buffer
	)
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	isReady := make(chan struct{})
	drained := make(chan error, 1)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		seen := false
		for sc.Scan() {
			mu.Lock()
			out.Write(sc.Bytes())
			out.WriteByte('\n')
			mu.Unlock()
			if !seen && bytes.Contains(sc.Bytes(), []byte(ready)) {
				seen = true
				close(isReady)
			}
		}
		drained <- sc.Err()
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	reported := false // the process exited before it was ready, and the test says so

	tb.Cleanup(func() {
		if reported {
			<-drained
			return
		}
		select {
		case err := <-exited:
			tb.Errorf("%s exited before the end of the test: %v\n%s", cmd.Path, err, output())
		default:
			if err := cmd.Process.Signal(stop); err != nil {
				tb.Errorf("stop %s: %v", cmd.Path, err)
			}
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				tb.Errorf("%s did not exit within 10s of %v: killed\n%s", cmd.Path, stop, output())
				if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
					tb.Error(err)
				}
				<-exited
			}
		}
		if err := <-drained; err != nil && !errors.Is(err, io.EOF) {
			tb.Errorf("reading the output of %s: %v", cmd.Path, err)
		}
	})

	select {
	case <-isReady:
	case err := <-exited:
		reported = true
		tb.Fatalf("%s exited before it was ready: %v\n%s", cmd.Path, err, output())
	case <-time.After(time.Minute):
		tb.Fatalf("%s not ready after a minute (waiting for %q)\n%s", cmd.Path, ready, output())
	}
}
