package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// DefaultStreamName is the JetStream stream holding every event.
const DefaultStreamName = "TICKWIRE_EVENTS"

// Stream defaults. Retention is by age and by size, whichever is hit first; the oldest
// messages are discarded, so ingest never blocks on a full store.
const (
	DefaultMaxAge   = 24 * time.Hour
	DefaultMaxBytes = 8 << 30 // 8 GiB
	// DefaultDuplicates is the de-duplication window: a publish retried within it with the
	// same Nats-Msg-Id is stored once, and a position a fenced ingest published that arrives
	// after the new holder stored it is dropped. The Bus itself never retries, and what a
	// fenced ingest had not sent Fence drops (fence.go), so the window only has to cover a
	// takeover. nats-server keeps every message id of the window in memory, about 150 bytes
	// each: at 14 k messages/s the server's default of 2 minutes held 275 MB of ids, its RSS
	// grew past 700 MB and GC pauses raised the feed's p99 from 70 to 200 ms; 30 s held 62 MB,
	// 10 s holds a third of that (docs/BENCHMARKS.md).
	DefaultDuplicates = 10 * time.Second
)

// StreamConfig configures the event stream. Zero fields take the defaults above.
type StreamConfig struct {
	Name       string // default: the Bus's Config.Stream
	MaxAge     time.Duration
	MaxBytes   int64
	Replicas   int // default 1; 3 on a production cluster
	Duplicates time.Duration
}

// EnsureStream creates the event stream (subjects EventSubjects, file storage, discard old)
// if it is missing, and remembers it for publishing and reading. It never changes a stream
// that exists: one stored with other limits is kept as it is (logged as a warning), since
// changing limits can drop history and is the admin role's act (UpdateStream), not ingest's.
func (b *Bus) EnsureStream(ctx context.Context, cfg StreamConfig) error {
	return b.putStream(ctx, cfg, false)
}

// UpdateStream creates the event stream or changes the stored one to cfg (retention, replicas,
// de-duplication window). It needs the admin role. Lowering MaxAge or MaxBytes discards the
// events beyond the new limits at once.
func (b *Bus) UpdateStream(ctx context.Context, cfg StreamConfig) error {
	return b.putStream(ctx, cfg, true)
}

func (b *Bus) putStream(ctx context.Context, cfg StreamConfig, update bool) error {
	if cfg.Name == "" {
		cfg.Name = b.cfg.Stream
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = DefaultDuplicates
	}
	jcfg := jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "Tickwire normalized market events, one subject per instrument",
		Subjects:    []string{EventSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.Duplicates,
		AllowDirect: true, // LastPosition reads via direct get, served by any replica
	}
	var s jetstream.Stream
	var err error
	if update {
		s, err = b.js.CreateOrUpdateStream(ctx, jcfg)
	} else {
		// Create is idempotent for an identical configuration, and refused (never applied)
		// for another one: then keep the stored stream.
		s, err = b.js.CreateStream(ctx, jcfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			if s, err = b.js.Stream(ctx, cfg.Name); err == nil {
				have := s.CachedInfo().Config
				b.logger.Warn("the event stream exists with other limits; keeping them (changing them is the admin role's: tickctl stream)",
					"stream", cfg.Name, "max_age", have.MaxAge.String(), "want_max_age", cfg.MaxAge.String(),
					"max_bytes", have.MaxBytes, "want_max_bytes", cfg.MaxBytes, "replicas", have.Replicas, "want_replicas", cfg.Replicas,
					"duplicates", have.Duplicates.String(), "want_duplicates", cfg.Duplicates.String())
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bus: ensure stream %s: %w", cfg.Name, err)
	}
	b.mu.Lock()
	b.stream = s
	b.mu.Unlock()
	return nil
}

// streamHandle returns the cached stream, looking it up if EnsureStream was not called in
// this process (feed does not create the stream).
func (b *Bus) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	b.mu.Lock()
	s := b.stream
	b.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoStream, b.cfg.Stream)
		}
		return nil, fmt.Errorf("bus: stream %s: %w", b.cfg.Stream, err)
	}
	b.mu.Lock()
	b.stream = s
	b.mu.Unlock()
	return s, nil
}

// StreamState is a summary of the stream's contents.
type StreamState struct {
	Msgs, Bytes       uint64
	FirstSeq, LastSeq uint64
	Subjects          uint64
	Created           time.Time // when the stream was created: a recreated stream starts its sequences again
}

// StreamState returns the stream's current state.
func (b *Bus) StreamState(ctx context.Context) (StreamState, error) {
	s, err := b.streamHandle(ctx)
	if err != nil {
		return StreamState{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return StreamState{}, fmt.Errorf("bus: stream info: %w", err)
	}
	st := info.State
	return StreamState{Msgs: st.Msgs, Bytes: st.Bytes, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Subjects: st.NumSubjects, Created: info.Created}, nil
}

// LastPosition returns the (epoch, seq) of the last stored event of instrument, found=false
// if the stream holds none (never published, or aged out). It implements
// normalize.PositionStore, so ingest continues an instrument's sequence after a restart.
func (b *Bus) LastPosition(ctx context.Context, instrument string) (epoch, seq uint64, found bool, err error) {
	ev, err := b.LastEvent(ctx, instrument)
	if ev == nil || err != nil {
		return 0, 0, false, err
	}
	return ev.GetEpoch(), ev.GetSeq(), true, nil
}

// LastEvent returns the last stored event of instrument, nil if the stream holds none. A
// standby ingest taking over compares it with what it saw itself (ingest.Config.Lease).
func (b *Bus) LastEvent(ctx context.Context, instrument string) (*tickwirev1.Event, error) {
	subj, err := EventSubject(instrument)
	if err != nil {
		return nil, err
	}
	s, err := b.streamHandle(ctx)
	if err != nil {
		return nil, err
	}
	msg, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("bus: last message of %s: %w", instrument, err)
	}
	var (
		dec  eventDecoder
		last *tickwirev1.Event
		bad  error
	)
	_ = dec.decodeMessage(msg.Header, msg.Data, func(ev *tickwirev1.Event) error {
		last = ev
		return nil
	}, func(err error) { bad = err })
	if bad != nil {
		// The last event of a message whose events cannot all be read is not known.
		return nil, fmt.Errorf("bus: decode last message of %s (stream seq %d): %w", instrument, msg.Sequence, bad)
	}
	return last, nil
}
