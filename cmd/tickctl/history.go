package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickwire/tickwire/internal/natsflags"
	"github.com/tickwire/tickwire/internal/replay"
	"github.com/tickwire/tickwire/pkg/history"
)

type exportCmd struct {
	From       timeArg       `required:"" placeholder:"T" help:"Window start (event time, inclusive)."`
	To         timeArg       `default:"now" placeholder:"T" help:"Window end (event time, inclusive); default now."`
	Instrument []string      `placeholder:"ID" help:"Instrument id (venue:SYMBOL) to export; repeat or comma-separate. Default: all."`
	Format     string        `enum:"ndjson,binary" default:"ndjson" help:"File format (${enum}): NDJSON (one protojson event per line) or the checksummed binary format of pkg/history."`
	Out        string        `required:"" placeholder:"FILE" help:"File to write (replaced atomically when complete); - for stdout."`
	Slack      time.Duration `default:"1m" help:"Tolerated difference between event and store times: reading starts this much before --from and stops at the first event ingested this much after --to."`
	ScanAll    bool          `help:"Read to the end of the stream instead of stopping after --to (finds events imported after the window's time)."`
}

func (c *exportCmd) Help() string {
	return `Writes every stored event whose event time (venue time, or ingest time when the venue gave none) is in [--from, --to], in stream order and verbatim (instrument, epoch, seq and times unchanged), so that "tickctl import" can restore it exactly.

Examples:
  tickctl export --from -15m --out last15m.ndjson
  tickctl export --from 2025-03-14T15:00:00Z --to 2025-03-14T15:05:00Z --instrument coinbase:BTC-USD,coinbase:ETH-USD --format binary --out btc-eth.twh
  tickctl export --from -1h --to -50m --out - | jq -c 'select(.trade)'`
}

func (c *exportCmd) Run(e *env) error {
	f, err := history.ParseFormat(c.Format)
	if err != nil {
		return usageErr("%v", err)
	}
	win := replay.Window{From: c.From.Resolve(e.now), To: c.To.Resolve(e.now), Instruments: c.Instrument, Slack: c.Slack, ScanAll: c.ScanAll}
	if win.To.Before(win.From) {
		return usageErr("--to %s is before --from %s", win.To.Format(time.RFC3339Nano), win.From.Format(time.RFC3339Nano))
	}
	b, err := e.connect()
	if err != nil {
		return err
	}
	defer closeBus(e, b)

	summary := e.stdout
	var out io.Writer
	var commit func() error
	if c.Out == "-" {
		out, summary = e.stdout, e.stderr
		commit = func() error { return nil }
	} else {
		tmp, err := os.CreateTemp(filepath.Dir(c.Out), "."+filepath.Base(c.Out)+".*.tmp")
		if err != nil {
			return err
		}
		defer func() {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name()) // gone already after a successful rename
		}()
		out = tmp
		commit = func() error {
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			return os.Rename(tmp.Name(), c.Out)
		}
	}
	w, err := history.NewWriter(out, f)
	if err != nil {
		return err
	}
	start := time.Now()
	st, err := replay.Export(e.ctx, replay.BusSource{Bus: b}, win, w)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := commit(); err != nil {
		return fmt.Errorf("write %s: %w", c.Out, err)
	}
	took := time.Since(start)
	fmt.Fprintf(summary, "exported %d events (%d scanned) of %s .. %s to %s as %s in %s (%s)\n",
		st.Written, st.Scanned, win.From.UTC().Format(time.RFC3339Nano), win.To.UTC().Format(time.RFC3339Nano),
		c.Out, f, took.Round(time.Millisecond), rate(st.Written, took))
	return nil
}

type importCmd struct {
	File   string `required:"" placeholder:"FILE" help:"History file to import (NDJSON or binary, detected)."`
	DryRun bool   `help:"Validate and count only; publish nothing (no NATS needed)."`
	// Into a fresh store, import creates the stream as ingest and feed would.
	Stream natsflags.Stream `embed:""`
}

func (c *importCmd) Help() string {
	return `Publishes the file's events verbatim (same instrument, epoch, seq and times) to the JetStream event stream. Each event is validated as feed would apply it (pkg/market). A bad row (an undecodable NDJSON line, such as a price with more decimals than its integer field holds; an invalid event; an event larger than the NATS server's max_payload) is rejected: named on stderr with its line (or binary record) and reason, counted, and skipped, and the import goes on. Events at or before the position the store already holds for their instrument are skipped too, so importing a file twice stores it once (JetStream's message ids also de-duplicate retries). A binary file is verified whole (trailer count and CRC) before anything is published.

Exit status: 0 every row imported (or already stored); 3 some rows rejected, the others imported; 1 the import failed (a read error, a corrupt binary file, NATS); 2 bad flags.

Into a fresh store (no stream yet) import creates the stream, with the --stream-* limits, as ingest and feed would. Import into a store used by live ingest only what is newer than it holds: older positions are skipped. To replay old history, import it into a separate NATS (for example "ingest --embed-nats --nats-data-dir /tmp/old" without a source, or any nats-server with JetStream).

Examples:
  tickctl import --file last15m.ndjson
  tickctl import --file btc-eth.twh --dry-run
  TICKWIRE_NATS_URL=nats://backtest:4222 tickctl import --file btc-eth.twh`
}

func (c *importCmd) Run(e *env) error {
	open := func() (*os.File, history.Reader, error) {
		f, err := os.Open(c.File)
		if err != nil {
			return nil, nil, err
		}
		r, err := history.Open(f)
		if err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("%s: %w", c.File, err)
		}
		return f, r, nil
	}
	f, r, err := open()
	if err != nil {
		return err
	}
	if _, ok := r.(*history.BinaryReader); ok {
		// The CRC covers the whole file: check it before publishing anything.
		n := uint64(0)
		for _, err := range history.All(r) {
			if err != nil {
				_ = f.Close()
				return fmt.Errorf("%s: after %d events: %w (nothing imported)", c.File, n, err)
			}
			n++
		}
		_ = f.Close()
		if f, r, err = open(); err != nil {
			return err
		}
	}
	defer f.Close()

	var store replay.Store
	if !c.DryRun {
		b, err := e.connect()
		if err != nil {
			return err
		}
		defer closeBus(e, b)
		if err := c.Stream.Validate(); err != nil {
			return usageErr("%v", err)
		}
		// A fresh store has no stream until some process creates it: import may be first.
		if err := b.EnsureStream(e.ctx, c.Stream.Config()); err != nil {
			return err
		}
		store = b
	}
	start := time.Now()
	st, err := replay.Import(e.ctx, r, store, e.logger)
	took := time.Since(start)
	verb := "published"
	if c.DryRun {
		verb = "valid (dry run)"
		// Read counts decoded events only: undecodable lines are rejected without being read.
		st.Published = st.Read - (st.Rejected - st.RejectedBy[replay.RejectUndecodable])
	}
	fmt.Fprintf(e.stdout, "%s: read %d, %s %d, rejected %d, already stored %d in %s (%s)\n",
		c.File, st.Read, verb, st.Published, st.Rejected, st.Skipped, took.Round(time.Millisecond), rate(st.Read, took))
	for _, rej := range st.Rejections {
		fmt.Fprintf(e.stderr, "%s: %s\n", c.File, rej)
	}
	if n := st.Rejected - uint64(len(st.Rejections)); n > 0 {
		fmt.Fprintf(e.stderr, "%s: %d more rejected rows not listed\n", c.File, n)
	}
	if err != nil {
		return err
	}
	if st.Rejected > 0 {
		rest := "the others were imported"
		if c.DryRun {
			rest = "the others are valid"
		}
		return fmt.Errorf("%w: %s: %d rows rejected (%s); %s", errRejected, c.File, st.Rejected, byReason(st.RejectedBy), rest)
	}
	return nil
}

// byReason formats rejection counts: "undecodable 1, too large 1".
func byReason(m map[replay.RejectReason]uint64) string {
	var parts []string
	for _, r := range []replay.RejectReason{replay.RejectUndecodable, replay.RejectInvalid, replay.RejectTooLarge} {
		if m[r] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, m[r]))
		}
	}
	return strings.Join(parts, ", ")
}
