package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// errNotTLS is wrapped by the error of a -tls run against a target that
// does not speak TLS.
var errNotTLS = errors.New("the target does not speak TLS; drop -tls")

// handshakeTLS runs a TLS client handshake on raw. When it fails and what
// the target sent shows that it does not speak TLS (it sent the
// ClientHello back, as an echo server does, or bytes that are not a TLS
// record), the error wraps errNotTLS, whose message says what to do:
// crypto/tls alone says "first record does not look like a TLS handshake",
// "unexpected handshake message of type *tls.clientHelloMsg", or nothing
// but a timeout.
func handshakeTLS(ctx context.Context, raw net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	sc := &sniffConn{Conn: raw}
	tc := tls.Client(sc, cfg)
	err := tc.HandshakeContext(ctx)
	var rh tls.RecordHeaderError
	switch {
	case err == nil:
		return tc, nil
	case sc.echoed():
		return nil, fmt.Errorf("TLS handshake: %w (the target sent back the ClientHello it was sent, as an echo server does): %w", err, errNotTLS)
	case errors.As(err, &rh):
		return nil, fmt.Errorf("TLS handshake: %w (the target answered %q): %w", err, rh.RecordHeader[:], errNotTLS)
	}
	return nil, fmt.Errorf("TLS handshake: %w", err)
}

// sniffLen is how many bytes sniffConn keeps each way: a TLS record
// header and the start of the ClientHello, up to its random bytes.
const sniffLen = 16

// sniffConn keeps the first bytes written to and read from a connection.
type sniffConn struct {
	net.Conn
	wrote, read []byte // up to sniffLen bytes each
}

func (c *sniffConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.wrote = keep(c.wrote, p[:n])
	return n, err
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read = keep(c.read, p[:n])
	return n, err
}

// keep appends to b what fits of p within sniffLen bytes.
func keep(b, p []byte) []byte {
	return append(b, p[:min(len(p), sniffLen-len(b))]...)
}

// echoed reports whether the peer sent back the first bytes written.
func (c *sniffConn) echoed() bool {
	return len(c.read) == sniffLen && bytes.Equal(c.read, c.wrote)
}
