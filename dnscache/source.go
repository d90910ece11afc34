package dnscache

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// A source answers one lookup. It returns the addresses and their TTL; or a
// *net.DNSError with IsNotFound set and, in ttl, the negative-caching time
// the answer carried (-1 when it carried none); or any other error for a
// transient failure, which is never cached.
type source interface {
	lookup(ctx context.Context, network, host string) (addrs []netip.Addr, ttl time.Duration, err error)
}

// instantSource is a source that answers from memory, without waiting:
// a caller can wait for it as it waits for a function call (see
// Cache.getSlow).
type instantSource interface {
	instant() bool
}

// noTTL marks a negative answer that carried no SOA record.
const noTTL time.Duration = -1

// systemSource asks a *net.Resolver and applies a configured TTL.
type systemSource struct {
	r   *net.Resolver
	ttl time.Duration
}

func (s systemSource) lookup(ctx context.Context, network, host string) ([]netip.Addr, time.Duration, error) {
	r := s.r
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, network, host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, noTTL, err
		}
		return nil, 0, err
	}
	// Older Go versions handed out IPv4 answers as IPv4-mapped IPv6
	// addresses (Go 1.26 does not); the cache stores the plain form either
	// way, so that callers compare addresses easily.
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, s.ttl, nil
}

// staticSource answers from the map given to Static, with a configured TTL.
type staticSource struct {
	hosts *hostsFile
	ttl   time.Duration
}

func (staticSource) instant() bool { return true }

func (s staticSource) lookup(_ context.Context, network, host string) ([]netip.Addr, time.Duration, error) {
	addrs, ttl, listed, err := s.hosts.answer(network, host, s.ttl)
	if !listed {
		return nil, noTTL, &net.DNSError{Err: "dnscache: no such host", Name: host, IsNotFound: true}
	}
	return addrs, ttl, err
}
