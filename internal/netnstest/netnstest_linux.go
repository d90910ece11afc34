package netnstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func runChild(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netnstest: network namespaces need root; not root")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+runPattern(t.Name()), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Skipf("netnstest: cannot start a process in a new network namespace: %v", err)
	}
	err := cmd.Wait()
	text := out.String()
	ran := regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): ` + regexp.QuoteMeta(t.Name()) + ` `)
	m := ran.FindStringSubmatch(text)
	switch {
	case err != nil:
		t.Fatalf("netnstest: %s in its namespace: %v\n%s", t.Name(), err, text)
	case m == nil:
		t.Fatalf("netnstest: the child process did not run %s:\n%s", t.Name(), text)
	case m[1] == "SKIP":
		t.Skipf("netnstest: skipped in its namespace:\n%s", text)
	case m[1] == "FAIL":
		t.Fatalf("netnstest: failed in its namespace:\n%s", text)
	}
	if testing.Verbose() {
		t.Logf("in its namespace:\n%s", text)
	}
}

func setUp(sysctls map[string]string) error {
	if err := loopbackUp(); err != nil {
		return err
	}
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := SetSysctl(k, sysctls[k]); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, sysctls[k], err)
		}
	}
	return nil
}

// loopbackUp brings "lo" up; a new namespace starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("ioctl SIOCGIFFLAGS", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("ioctl SIOCSIFFLAGS", err)
	}
	return nil
}
