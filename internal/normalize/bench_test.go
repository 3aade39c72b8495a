package normalize_test

import (
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// BenchmarkValidate measures Validator.Validate on a synthetic event mix (book updates,
// trades, periodic snapshots) over 1000 instruments.
func BenchmarkValidate(b *testing.B) {
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 1000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]*tickwirev1.Event, 1<<16)
	for i := range evs {
		evs[i] = m.Next(int64(i) * 1000)
	}
	v, err := normalize.NewValidator(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(0, 1<<40)
	for _, ev := range evs[:2000] { // register instruments
		if _, err := v.Validate(ev, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Validate(evs[i&(len(evs)-1)], now); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkParseMantissa(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := normalize.ParseMantissa("64123.45", 2); err != nil {
			b.Fatal(err)
		}
	}
}
