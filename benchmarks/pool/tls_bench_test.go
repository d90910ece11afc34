package poolbench

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nettune/nettune/internal/servetest"
	"github.com/nettune/nettune/internal/tlstest"

	"github.com/jackc/puddle/v2"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
)

// tlsConfigs returns a server config with a self-signed ECDSA P-256
// certificate for loopback and a client config that trusts it.
func tlsConfigs(b *testing.B) (server, client *tls.Config) {
	server, client, err := tlstest.Configs()
	if err != nil {
		b.Fatal(err)
	}
	return server, client
}

// echoServer serves TLS echo on loopback until the benchmark ends.
func echoServer(b *testing.B, cfg *tls.Config) string {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	servetest.Serve(b, ln, servetest.Echo)
	return ln.Addr().String()
}

// request writes a small request and reads its echo.
func request(c net.Conn, buf []byte) error {
	if _, err := c.Write(buf); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf)
	return err
}

// BenchmarkRequestTLS: one request/response over TLS on loopback, over a
// pooled connection (nettune, puddle) or over a connection dialed, with a
// full TLS handshake, for each request (dial). p50-ns is the median of
// each request's latency, from nettune's latency histogram.
func BenchmarkRequestTLS(b *testing.B) {
	serverCfg, clientCfg := tlsConfigs(b)
	addr := echoServer(b, serverCfg)
	dialer := &tls.Dialer{Config: clientCfg}
	ctx := context.Background()
	msg := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")

	measure := func(b *testing.B, op func(buf []byte) error) {
		h, err := latency.New()
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, len(msg))
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, msg)
			start := time.Now()
			if err := op(buf); err != nil {
				b.Fatal(err)
			}
			h.Record(time.Since(start))
		}
		b.ReportMetric(float64(h.Snapshot().Quantile(0.5).Nanoseconds()), "p50-ns")
	}

	b.Run("impl=nettune", func(b *testing.B) {
		cp, err := pool.NewConnPool(dialer.DialContext, "tcp", addr, pool.MaxSize(4))
		if err != nil {
			b.Fatal(err)
		}
		defer cp.Shutdown(ctx)
		measure(b, func(buf []byte) error {
			c, err := cp.Get(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			return request(c, buf)
		})
	})
	b.Run("impl=puddle", func(b *testing.B) {
		p, err := puddle.NewPool(&puddle.Config[net.Conn]{
			Constructor: func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) },
			Destructor:  func(c net.Conn) { _ = c.Close() },
			MaxSize:     4,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		measure(b, func(buf []byte) error {
			r, err := p.Acquire(ctx)
			if err != nil {
				return err
			}
			if err := request(r.Value(), buf); err != nil {
				r.Destroy()
				return err
			}
			r.Release()
			return nil
		})
	})
	b.Run("impl=dial", func(b *testing.B) {
		measure(b, func(buf []byte) error {
			c, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			return request(c, buf)
		})
	})
}
