//go:build !unix

package pool

import "syscall"

const livenessSupported = false

func peek(syscall.RawConn, bool) error { return errLivenessUnsupported }
