package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/replay"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

type replayCmd struct {
	From       timeArg       `required:"" placeholder:"T" help:"Window start (event time)."`
	To         timeArg       `default:"now" placeholder:"T" help:"Window end (event time); default now."`
	Instrument []string      `placeholder:"ID" help:"Instrument id (venue:SYMBOL) to replay; repeat or comma-separate. Default: all."`
	Speed      float64       `default:"1" help:"1 = original timing, N = N times faster, 0 = as fast as possible."`
	Session    string        `placeholder:"ID" help:"Session id, [a-z0-9][a-z0-9-]{0,63}. Default: random (r-xxxxxxxx)."`
	FeedURL    string        `name:"feed-url" default:"http://127.0.0.1:8080" help:"The feed's HTTP address, for the dashboard link printed at start."`
	Lookback   time.Duration `default:"1m" help:"How far before the window start (and each seek) to read, to rebuild every instrument's book from its last snapshot."`
	Slack      time.Duration `default:"1m" help:"Reading stops at the first event ingested this much after --to."`
	ScanAll    bool          `help:"Read to the end of the stream instead of stopping after --to (finds events imported after the window's time)."`
	Token      string        `env:"TICKWIRE_TOKEN" help:"A feed token with the replay right: the printed dashboard link signs the browser in with it (in the URL fragment, which the browser never sends), and its subject may control the session."`
	Controller []string      `placeholder:"SUB" help:"Token subject that may pause, seek and change the speed of the session through a feed (repeat or comma-separate); the --token's subject is one. Tokens granted replay_control always may; other watchers only watch."`
}

func (c *replayCmd) Help() string {
	return `Re-streams the stored events of [--from, --to] into a replay session on NATS, which feed serves to WebSocket clients (the dashboard, bots, "tickctl tail --replay") over the same protocol as live data. Every instrument starts with its reference data and a full book snapshot of its state at --from, then its events follow at the chosen speed, re-sequenced into one gapless chain. Live data is not touched.

The session runs until interrupted (Ctrl-C). When the window is done it is FINISHED but keeps answering, so it can be sought back with "tickctl replay-control".

Examples:
  tickctl replay --from -15m --to -5m --speed 10
  tickctl replay --from 2025-03-14T15:00:00Z --to 2025-03-14T15:30:00Z --instrument coinbase:BTC-USD --session btc-crash --speed 1
  tickctl replay --from -1h --speed 0        # as fast as possible`
}

func (c *replayCmd) Run(e *env) error {
	win := replay.Window{From: c.From.Resolve(e.now), To: c.To.Resolve(e.now), Instruments: c.Instrument, Slack: c.Slack, ScanAll: c.ScanAll}
	if win.To.Before(win.From) {
		return usageErr("--to %s is before --from %s", win.To.Format(time.RFC3339Nano), win.From.Format(time.RFC3339Nano))
	}
	if c.Session != "" {
		if err := bus.ValidSessionID(c.Session); err != nil {
			return usageErr("--session: %v", err)
		}
	}
	if !(c.Speed >= 0 && c.Speed <= wire.MaxReplaySpeed) {
		return usageErr("--speed %v outside 0..%v", c.Speed, wire.MaxReplaySpeed)
	}
	controllers := c.Controller
	if c.Token != "" {
		sub, err := auth.UnverifiedSubject(c.Token)
		if err != nil {
			return usageErr("--token: %v", err)
		}
		if !slices.Contains(controllers, sub) {
			controllers = append(controllers, sub)
		}
	}
	b, err := e.connect()
	if err != nil {
		return err
	}
	defer closeBus(e, b)
	r, err := replay.New(replay.Config{Session: c.Session, Window: win, Speed: c.Speed, Lookback: c.Lookback,
		Controllers: controllers},
		replay.BusSource{Bus: b}, b, e.logger)
	if err != nil {
		return usageErr("%v", err)
	}
	id := r.Session()
	insts := "all instruments"
	if len(c.Instrument) > 0 {
		insts = strings.Join(c.Instrument, ", ")
	}
	fmt.Fprintf(e.stdout, "replay session %s: %s .. %s, %s, speed %s\n", id,
		win.From.UTC().Format(time.RFC3339Nano), win.To.UTC().Format(time.RFC3339Nano), insts, speedString(c.Speed))
	link := fmt.Sprintf("%s/?replay=%s", strings.TrimRight(c.FeedURL, "/"), id)
	if c.Token != "" {
		link += "#token=" + url.QueryEscape(c.Token)
	}
	fmt.Fprintf(e.stdout, "open %s\n", link)
	if len(controllers) > 0 {
		fmt.Fprintf(e.stdout, "controlled through a feed by: %s (and replay_control tokens)\n", strings.Join(controllers, ", "))
	}
	fmt.Fprintf(e.stdout, "control: tickctl replay-control --session %s pause|resume|seek T|speed N|status\n", id)

	done := make(chan error, 1)
	go func() { done <- r.Run(e.ctx) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last *pb.ReplayStatus
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "replay session %s stopped\n", id)
			return nil
		case <-tick.C:
			st := r.Status()
			if st != nil && (last == nil || st.State != last.State || st.Generation != last.Generation || st.Speed != last.Speed) {
				fmt.Fprintln(e.stdout, formatStatus(st))
			}
			if st != nil {
				last = st
			}
		}
	}
}

type replayControlCmd struct {
	Session string        `required:"" placeholder:"ID" help:"The replay session."`
	Action  string        `arg:"" enum:"pause,resume,seek,speed,status" help:"pause, resume, seek T, speed N, or status."`
	Value   string        `arg:"" optional:"" help:"seek: T, RFC3339 or relative to the session's clock (-30s, +1m); speed: N (1 = original, 0 = as fast as possible)."`
	Timeout time.Duration `default:"5s" help:"How long to wait for the session's answer."`
}

func (c *replayControlCmd) Help() string {
	return `Sends one control request to a running replay session and prints its status after it.

Examples:
  tickctl replay-control --session r-1a2b3c4d pause
  tickctl replay-control --session r-1a2b3c4d resume
  tickctl replay-control --session r-1a2b3c4d seek 2025-03-14T15:10:00Z
  tickctl replay-control --session r-1a2b3c4d seek -30s     # 30 s back from the session's clock
  tickctl replay-control --session r-1a2b3c4d speed 20
  tickctl replay-control --session r-1a2b3c4d status`
}

func (c *replayControlCmd) Run(e *env) error {
	if err := bus.ValidSessionID(c.Session); err != nil {
		return usageErr("--session: %v", err)
	}
	value := strings.TrimPrefix(c.Value, "=") // see markSeekValue
	var ctl *pb.ReplayControl
	var seek timeArg
	switch c.Action {
	case "pause", "resume", "status":
		if value != "" {
			return usageErr("%s takes no value", c.Action)
		}
		switch c.Action {
		case "pause":
			ctl = &pb.ReplayControl{Action: &pb.ReplayControl_Pause{Pause: true}}
		case "resume":
			ctl = &pb.ReplayControl{Action: &pb.ReplayControl_Resume{Resume: true}}
		default:
			ctl = &pb.ReplayControl{}
		}
	case "speed":
		s, err := strconv.ParseFloat(value, 64)
		if err != nil || !(s >= 0 && s <= wire.MaxReplaySpeed) {
			return usageErr("speed %q: want a number in 0..%v", value, wire.MaxReplaySpeed)
		}
		ctl = &pb.ReplayControl{Action: &pb.ReplayControl_Speed{Speed: s}}
	case "seek":
		var err error
		if seek, err = parseTimeArg(value); err != nil || value == "" {
			return usageErr("seek needs a time: %v", err)
		}
	}
	b, err := e.connect()
	if err != nil {
		return err
	}
	defer closeBus(e, b)
	ctx, cancel := context.WithTimeout(e.ctx, c.Timeout)
	defer cancel()
	if c.Action == "seek" {
		ref := e.now
		if seek.relative {
			st, err := b.RequestReplayControl(ctx, c.Session, &pb.ReplayControl{})
			if err != nil {
				return err
			}
			ref = time.Unix(0, st.ClockNs)
		}
		ctl = &pb.ReplayControl{Action: &pb.ReplayControl_SeekTimeNs{SeekTimeNs: seek.Resolve(ref).UnixNano()}}
	}
	st, err := b.RequestReplayControl(ctx, c.Session, ctl)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, formatStatus(st))
	return nil
}

// markSeekValue rewrites "replay-control ... seek -30s" so that kong takes "-30s" as the
// positional value rather than a short flag: it prefixes it with "=", which Run removes.
func markSeekValue(args []string) []string {
	isCtl := false
	for _, a := range args {
		if a == "replay-control" {
			isCtl = true
		}
	}
	if !isCtl {
		return args
	}
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "seek" && isSignedDuration(out[i+1]) {
			out[i+1] = "=" + out[i+1]
		}
	}
	return out
}

func speedString(s float64) string {
	if s == 0 {
		return "max"
	}
	return strconv.FormatFloat(s, 'g', -1, 64) + "x"
}

// formatStatus renders a ReplayStatus on one line.
func formatStatus(st *pb.ReplayStatus) string {
	state := strings.TrimPrefix(st.State.String(), "REPLAY_STATE_")
	insts := "all"
	if n := len(st.Instruments); n > 0 && n <= 5 {
		insts = strings.Join(st.Instruments, ",")
	} else if n > 5 {
		insts = strconv.Itoa(n)
	}
	return fmt.Sprintf("session %s: %s at %s, speed %s, window %s .. %s, generation %d, %d events, instruments %s",
		st.Session, state, tsString(st.ClockNs), speedString(st.Speed), tsString(st.FromNs), tsString(st.ToNs),
		st.Generation, st.Events, insts)
}

func tsString(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
