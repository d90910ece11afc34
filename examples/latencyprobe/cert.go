package main

import "net/netip"

// loopback4 is the address the embedded DNS server hands out.
var loopback4 = netip.MustParseAddr("127.0.0.1")
