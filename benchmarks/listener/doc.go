// Package listenerbench compares nettune's listener with plain
// net.ListenConfig, valyala/tcplisten and libp2p/go-reuseport on loopback:
// the cost of a connect+accept with per-connection options, and the
// throughput of a reuse-port group of accept loops.
package listenerbench
