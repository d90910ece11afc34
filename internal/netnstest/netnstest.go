// Package netnstest runs a test inside a network namespace of its own, so
// that it may set per-namespace sysctls (net.ipv4.tcp_fastopen,
// net.core.somaxconn, net.ipv4.tcp_migrate_req, …) and listen on fixed
// ports without touching the host.
//
// The test binary re-executes itself for that one test in a fresh network
// namespace (clone with CLONE_NEWNET), where only a loopback interface
// exists. Namespaces need root and Linux; elsewhere the test is skipped with
// the reason. The namespace disappears with the child process.
//
//	func TestFastOpen(t *testing.T) {
//		if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_fastopen": "3"}) {
//			return // the parent: the child ran the test and its result is reported
//		}
//		// Here: inside the namespace, loopback up, sysctls set.
//	}
package netnstest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nettune/nettune/internal/procnet"
)

// envChild names the test the child process is to run in its namespace.
const envChild = "NETTUNE_NETNS_CHILD"

// Enter runs the calling test in a new network namespace. In the parent
// process it re-executes the test binary for t alone in the namespace,
// reports the child's output and result as t's, and returns false: the
// caller must return at once. In the child it brings the loopback interface
// up, writes sysctls (keys in dotted form, such as "net.core.somaxconn") and
// returns true: the caller goes on with the test body. Without root or on a
// platform without network namespaces, t is skipped with the reason.
func Enter(t *testing.T, sysctls map[string]string) bool {
	t.Helper()
	if os.Getenv(envChild) == t.Name() {
		if err := setUp(sysctls); err != nil {
			t.Fatalf("netnstest: set up namespace: %v", err)
		}
		return true
	}
	runChild(t)
	return false
}

// Sysctl reads a sysctl of the current network namespace, such as
// "net.ipv4.tcp_migrate_req".
func Sysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	return strings.TrimSpace(string(b)), err
}

// SetSysctl writes a sysctl of the current network namespace. Use it only
// inside a namespace made by Enter.
func SetSysctl(key, value string) error {
	return os.WriteFile(sysctlPath(key), []byte(value), 0o644)
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// runPattern is the -test.run pattern that selects exactly the test named
// name (subtests included), each level anchored.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + quoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func quoteMeta(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Netstat reads one counter of /proc/net/netstat in the current network
// namespace, such as ("TcpExt", "TCPFastOpenPassive").
func Netstat(group, name string) (int64, error) {
	v, err := procnet.Counter("/proc/net/netstat", group, name)
	return int64(v), err
}
