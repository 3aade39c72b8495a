package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// StreamInfo is the event stream's configuration and state.
type StreamInfo struct {
	Name       string
	MaxAge     time.Duration
	MaxBytes   int64
	Replicas   int
	Duplicates time.Duration
	State      StreamState
}

// StreamInfo returns the event stream's configuration and current state.
func (b *Bus) StreamInfo(ctx context.Context) (StreamInfo, error) {
	s, err := b.streamHandle(ctx)
	if err != nil {
		return StreamInfo{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return StreamInfo{}, fmt.Errorf("bus: stream info: %w", err)
	}
	c, st := info.Config, info.State
	return StreamInfo{Name: c.Name, MaxAge: c.MaxAge, MaxBytes: c.MaxBytes, Replicas: c.Replicas, Duplicates: c.Duplicates,
		State: StreamState{Msgs: st.Msgs, Bytes: st.Bytes, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Subjects: st.NumSubjects}}, nil
}

// LastError returns the last error of the connection, or of its last failed connection
// attempt, or nil. A refused login wraps ErrAuth.
func (b *Bus) LastError() error {
	err := b.nc.LastError()
	if p := b.connErr.Load(); err == nil && p != nil {
		err = *p
	}
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	return err
}
