//go:build !linux

package netlab

import "time"

func preciseSleep(d time.Duration) { time.Sleep(d) }
