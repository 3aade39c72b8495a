// Command tickctl is Tickwire's operations CLI: export and import history files, run and
// control replay sessions, tail a feed (live or replay) from the terminal, mint tokens and
// revoke them.
//
// Run "tickctl --help" or "tickctl <command> --help" for usage with examples.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
