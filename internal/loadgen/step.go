package loadgen

import (
	"context"
	"fmt"
	"time"
)

// window is what the load generator measured between two instants.
type window struct {
	Seconds    float64
	TargetRate float64 // events/s asked of the publisher
	Published  uint64  // events published in the window
	Expected   uint64  // updates the feed had to deliver to the clients measured
	Delivered  uint64  // updates that followed on in their stream's chain
	Gaps       uint64
	Conflated  uint64 // CONFLATED snapshots
	Closes     int    // connections the feed closed
	P99        time.Duration
}

// Thresholds of a sustained step.
type thresholds struct {
	MinRatio float64
	MaxP99   time.Duration
}

// judge says whether the feed sustained a window, and whether the publisher reached its rate
// (a publisher that cannot is a limit of the load generator or NATS, never the feed's).
func judge(w window, th thresholds) (ok bool, publisherLimited bool, verdict string) {
	pubRate := float64(w.Published) / w.Seconds
	publisherLimited = w.TargetRate > 0 && pubRate < th.MinRatio*w.TargetRate
	ratio := 1.0
	if w.Expected > 0 {
		ratio = float64(w.Delivered) / float64(w.Expected)
	}
	var why []string
	if ratio < th.MinRatio {
		why = append(why, fmt.Sprintf("behind (%.1f%% delivered)", 100*ratio))
	}
	if th.MaxP99 > 0 && w.P99 > th.MaxP99 {
		why = append(why, fmt.Sprintf("p99 %s > %s", w.P99.Round(time.Millisecond), th.MaxP99))
	}
	if w.Gaps > 0 {
		why = append(why, fmt.Sprintf("%d gaps", w.Gaps))
	}
	if w.Conflated > 0 {
		why = append(why, fmt.Sprintf("%d conflated", w.Conflated))
	}
	if w.Closes > 0 {
		why = append(why, fmt.Sprintf("%d closed", w.Closes))
	}
	ok = len(why) == 0
	switch {
	case ok && publisherLimited:
		verdict = fmt.Sprintf("ok, but publisher reached only %.0f ev/s", pubRate)
	case ok:
		verdict = "ok"
	default:
		verdict = joinComma(why)
		if publisherLimited {
			verdict += fmt.Sprintf("; publisher reached only %.0f ev/s", pubRate)
		}
	}
	return ok, publisherLimited, verdict
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// stepper raises the rate geometrically while steps are sustained.
type stepper struct {
	rate, factor, max float64
}

// next returns the rate of the step after one that ran at s.rate with the given outcome, or
// false when stepping ends: the step was not sustained, the publisher could not reach its
// rate (a higher target would measure the publisher, not the feed), or the cap is reached.
func (s *stepper) next(ok, publisherLimited bool) (float64, bool) {
	if !ok || publisherLimited {
		return 0, false
	}
	r := s.rate * s.factor
	if r > s.max {
		return 0, false
	}
	s.rate = r
	return r, true
}

// stepRate is one step of an explicit schedule: the publisher's rate (events/s into NATS, or
// publications/s into Centrifugo's API) chosen to deliver about delivered updates/s.
type stepRate struct {
	events, delivered float64
}

// measureFunc measures one step at rate (delivered: the updates/s it was chosen for, 0 if none).
type measureFunc func(ctx context.Context, name string, rate, delivered float64, warmup, hold time.Duration) (StepReport, error)

// stepLoop runs step mode: the explicit schedule if there is one (every entry in order), else
// geometric steps from rate by cfg.StepFactor up to cfg.MaxRate. It stops at the first step not
// sustained or publisher-limited, or when the run's deadline leaves no room for another step;
// rep.Best is the last sustained step.
func stepLoop(ctx context.Context, cfg Config, schedule []stepRate, rate float64, measure measureFunc, emit func(StepReport), rep *Report) error {
	st := &stepper{rate: rate, factor: cfg.StepFactor, max: cfg.MaxRate}
	delivered := 0.0
	if len(schedule) > 0 {
		st.rate, delivered = schedule[0].events, schedule[0].delivered
	}
	for i := 1; ; i++ {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < cfg.Warmup+cfg.Hold+time.Second {
			rep.Notes = append(rep.Notes, fmt.Sprintf("stepping stopped by --duration %s before delivery fell behind", cfg.Duration))
			return nil
		}
		s, err := measure(ctx, fmt.Sprintf("%d", i), st.rate, delivered, cfg.Warmup, cfg.Hold)
		if err != nil {
			return err
		}
		emit(s)
		if s.OK {
			rep.Best = &rep.Steps[len(rep.Steps)-1]
		}
		if len(schedule) > 0 {
			if !s.OK || s.PublisherLimited || i >= len(schedule) {
				return nil
			}
			st.rate, delivered = schedule[i].events, schedule[i].delivered
			continue
		}
		if _, more := st.next(s.OK, s.PublisherLimited); !more {
			return nil
		}
	}
}
