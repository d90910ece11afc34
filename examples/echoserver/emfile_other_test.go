//go:build !linux

package main

import (
	"fmt"
	"os"
)

func childMain() int {
	fmt.Fprintln(os.Stderr, "the low-file-limit child runs on Linux only")
	return 1
}
