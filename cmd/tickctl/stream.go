package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
)

type streamCmd struct {
	MaxAge     time.Duration `placeholder:"D" help:"Keep events at most this long (e.g. 48h)."`
	MaxBytes   int64         `placeholder:"BYTES" help:"Keep at most this many bytes (e.g. 17179869184 for 16 GiB); the oldest events go first."`
	Replicas   int           `placeholder:"N" help:"Copies of the stream on a NATS cluster (1..5)."`
	Duplicates time.Duration `placeholder:"D" help:"De-duplication window of publishes (default 10s; the server keeps about 150 bytes per message of it in memory)."`
	Timeout    time.Duration `default:"10s" help:"How long to wait for the server's answer."`
}

func (c *streamCmd) Help() string {
	return `Without flags, prints the event stream's limits and contents (any role that reads the stream may). With one or more limits, changes them: that needs the admin role (--nats-user admin; in "make run" its password is .data/nats-auth/admin.password). Limits not given keep their defaults (24h, 8 GiB, 1 replica, 2m), not the stored values: give every limit you want. Lowering --max-age or --max-bytes discards the events beyond them at once. No role may purge or delete the stream.

Examples:
  tickctl stream
  tickctl --nats-user admin stream --max-age 48h --max-bytes 17179869184`
}

func (c *streamCmd) Run(e *env) error {
	update := c.MaxAge != 0 || c.MaxBytes != 0 || c.Replicas != 0 || c.Duplicates != 0
	if c.MaxAge < 0 || c.MaxBytes < 0 || c.Replicas < 0 || c.Replicas > 5 || c.Duplicates < 0 {
		return usageErr("limits must be positive (replicas 1..5)")
	}
	b, err := e.connect()
	if err != nil {
		return err
	}
	defer closeBus(e, b)
	ctx, cancel := context.WithTimeout(e.ctx, c.Timeout)
	defer cancel()
	if update {
		if err := b.UpdateStream(ctx, bus.StreamConfig{MaxAge: c.MaxAge, MaxBytes: c.MaxBytes, Replicas: c.Replicas, Duplicates: c.Duplicates}); err != nil {
			return fmt.Errorf("update the stream (needs the admin role): %w", err)
		}
	}
	info, err := b.StreamInfo(ctx)
	if err != nil {
		return err
	}
	st := info.State
	fmt.Fprintf(e.stdout, "stream %s: max age %s, max bytes %d, replicas %d, duplicates window %s; %d events (%d bytes) in %d subjects, seq %d..%d\n",
		info.Name, info.MaxAge, info.MaxBytes, info.Replicas, info.Duplicates, st.Msgs, st.Bytes, st.Subjects, st.FirstSeq, st.LastSeq)
	return nil
}
