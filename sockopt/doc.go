// Package sockopt sets socket options correctly and proves it: typed,
// validated options; a Control function for net.Dialer and net.ListenConfig
// that returns every setsockopt error; Apply for existing connections; and
// Get to read back what the kernel actually applied.
package sockopt
