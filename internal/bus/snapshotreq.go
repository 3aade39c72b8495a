package bus

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// Snapshot requests: a feed whose copy of an instrument's book broke (it missed an event) asks
// ingest for a fresh full-book snapshot of that instrument, so that its book subscribers wait
// milliseconds, not until the source's next checkpoint. A request is a core NATS message with no
// reply on tickwire.snapshot.request.<instrument, encoded as in event subjects>; ingest
// rate-limits what it acts on (ingest.SnapshotRequests).

// SnapshotRequestSubjects matches every snapshot request.
const SnapshotRequestSubjects = snapshotRequestPrefix + ">"

const snapshotRequestPrefix = "tickwire.snapshot.request."

// SnapshotRequestSubject returns the request subject of instrument.
func SnapshotRequestSubject(instrument string) (string, error) {
	subj, err := EventSubject(instrument)
	if err != nil {
		return "", err
	}
	return snapshotRequestPrefix + strings.TrimPrefix(subj, subjectPrefix), nil
}

// RequestSnapshot asks ingest for a fresh snapshot of instrument. It does not wait: the answer is
// the snapshot event on the stream, when the source sends it.
func (b *Bus) RequestSnapshot(instrument string) error {
	subj, err := SnapshotRequestSubject(instrument)
	if err != nil {
		return err
	}
	if err := b.nc.Publish(subj, nil); err != nil {
		return fmt.Errorf("bus: snapshot request for %s: %w", instrument, err)
	}
	return nil
}

// ServeSnapshotRequests calls handle with the instrument of every snapshot request, on the NATS
// subscription's goroutine, until stop. A request whose subject is not a valid instrument is
// ignored.
func (b *Bus) ServeSnapshotRequests(handle func(instrument string)) (stop func(), err error) {
	sub, err := b.nc.Subscribe(SnapshotRequestSubjects, func(m *nats.Msg) {
		inst, err := InstrumentFromSubject(subjectPrefix + strings.TrimPrefix(m.Subject, snapshotRequestPrefix))
		if err != nil {
			b.logger.Debug("snapshot request with a bad subject ignored", "subject", m.Subject)
			return
		}
		handle(inst)
	})
	if err != nil {
		return nil, fmt.Errorf("bus: serve snapshot requests: %w", err)
	}
	if err := b.nc.Flush(); err != nil { // the server holds the subscription when this returns
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("bus: serve snapshot requests: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}
