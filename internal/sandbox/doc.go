// Package sandbox keeps kernel-touching tests away from the machine they run
// on. Every such test runs inside fresh network, mount and PID namespaces
// that the harness makes itself, with private tmpfs mounts on /run and
// /etc/netns, so that `go test ./...` as root can never change the host's
// interfaces, routes, firewall or named namespaces, and nothing started by a
// test outlives it: when the sandbox's init process exits, the PID namespace
// takes every process inside with it. Every sandbox is the same clean
// machine whatever the host has: the sysctls tests rely on are set to the
// kernel's defaults (a new namespace inherits the host's forwarding), and
// no mount of the host's stays under /run or /etc/netns (RerunOnBusyHost
// proves it on a host that forwards and has a shared /run/netns).
//
// Two facilities:
//
//   - Main, for TestMain of packages whose Go test code touches the kernel
//     in-process: it re-executes the test binary inside a sandbox, and
//     Require lets a test run only there.
//   - New, for end-to-end tests: a long-lived sandbox in which commands run
//     through nsenter.
//
// Without root (or off Linux) kernel tests skip with a one-line reason; pure
// tests run as usual.
package sandbox
