package consolidated

import (
	"context"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// BusMembers returns Members over NATS: the members' events from the stream through an
// ordered consumer starting now, and snapshot requests to their ingest. The connection's user
// needs the consolidator role's permissions (bus.RoleConsolidator).
func BusMembers(b *bus.Bus) Members { return busMembers{b} }

type busMembers struct{ b *bus.Bus }

func (m busMembers) Subscribe(ctx context.Context, instruments []string, handle func(*tickwirev1.Event) error) (func(), error) {
	subjects := make([]string, len(instruments))
	for i, id := range instruments {
		subj, err := bus.EventSubject(id)
		if err != nil {
			return nil, err
		}
		subjects[i] = subj
	}
	c, err := m.b.ConsumeEvents(ctx, bus.ConsumeOptions{Subjects: subjects, StartTime: time.Now(), Live: true}, handle)
	if err != nil {
		return nil, err
	}
	return c.Stop, nil
}

func (m busMembers) RequestSnapshot(instrument string) error { return m.b.RequestSnapshot(instrument) }
