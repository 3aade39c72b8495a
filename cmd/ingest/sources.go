package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/binance"
	"github.com/tickwire/tickwire/internal/source/capture"
	"github.com/tickwire/tickwire/internal/source/coinbase"
	"github.com/tickwire/tickwire/internal/source/consolidated"
	"github.com/tickwire/tickwire/internal/source/file"
	"github.com/tickwire/tickwire/internal/source/kraken"
	"github.com/tickwire/tickwire/internal/source/live"
	"github.com/tickwire/tickwire/internal/source/synthetic"
)

func (c *config) validateSource() error {
	switch c.Source {
	case "kraken", "binance", "coinbase":
		if len(c.Instruments) == 0 {
			return fmt.Errorf("--source %s needs --instruments", c.Source)
		}
	case "capture":
		if c.CaptureFormat == "" || len(c.CaptureFile) == 0 {
			return fmt.Errorf("--source capture needs --capture-format and --capture-file")
		}
	case "file":
		if c.FileFormat == "" || len(c.File) == 0 {
			return fmt.Errorf("--source file needs --file-format and --file")
		}
	case "consolidated":
		if len(c.Consolidate) == 0 {
			return fmt.Errorf("--source consolidated needs --consolidate")
		}
	}
	if len(c.Consolidate) > 0 && c.Source != "consolidated" {
		return fmt.Errorf("--consolidate needs --source consolidated")
	}
	if _, err := c.consolidated(); err != nil {
		return err
	}
	if c.Speed < 0 {
		return fmt.Errorf("--speed must be >= 0")
	}
	if _, err := c.specs(); err != nil {
		return err
	}
	return nil
}

// consolidated parses --consolidate.
func (c *config) consolidated() ([]consolidated.Spec, error) {
	var specs []consolidated.Spec
	for _, v := range c.Consolidate {
		sp, err := consolidated.ParseSpec(v)
		if err != nil {
			return nil, fmt.Errorf("--consolidate: %w", err)
		}
		specs = append(specs, sp)
	}
	return specs, nil
}

// specs merges --instrument-specs (file) and --instrument-spec (flags win).
func (c *config) specs() (source.Specs, error) {
	specs := source.Specs{}
	if c.InstrumentSpecs != "" {
		var err error
		if specs, err = source.LoadSpecs(c.InstrumentSpecs); err != nil {
			return nil, fmt.Errorf("--instrument-specs: %w", err)
		}
	}
	if err := specs.ParseSpecFlags(c.InstrumentSpec); err != nil {
		return nil, fmt.Errorf("--instrument-spec: %w", err)
	}
	return specs, nil
}

// handler builds the venue adapter named by a --source or --capture-format value.
func (c *config) handler(name string, specs source.Specs, logger *slog.Logger) (live.Venue, error) {
	switch name {
	case "kraken", "kraken-v1", "kraken-v2":
		v := 1
		if name == "kraken-v2" || (name == "kraken" && c.KrakenAPI == "v2") {
			v = 2
		}
		return kraken.New(kraken.Config{Version: v, Depth: c.BookDepth, Specs: specs, Symbols: c.Instruments, Channels: c.Channels, URL: c.VenueURL, RESTURL: c.RESTURL}, logger)
	case "binance", "binance-futures":
		m := binance.Market(c.BinanceMarket)
		if name == "binance-futures" {
			m = binance.Futures
		}
		return binance.New(binance.Config{Market: m, Specs: specs, Symbols: c.Instruments, Channels: c.Channels, URL: c.VenueURL, RESTURL: c.RESTURL}, logger)
	case "coinbase", "coinbase-advanced", "coinbase-exchange":
		f := coinbase.Feed(c.CoinbaseFeed)
		switch name {
		case "coinbase-advanced":
			f = coinbase.Advanced
		case "coinbase-exchange":
			f = coinbase.Exchange
		}
		return coinbase.New(coinbase.Config{Feed: f, Specs: specs, Symbols: c.Instruments, Channels: c.Channels, URL: c.VenueURL, RESTURL: c.RESTURL}, logger)
	}
	return nil, fmt.Errorf("unknown venue adapter %q", name)
}

// newSource builds the configured source; closeFn releases its files. b is the NATS
// connection consolidated instruments read their members from.
func newSource(c *config, b *bus.Bus, logger *slog.Logger, reg prometheus.Registerer) (src ingest.Source, closeFn func() error, err error) {
	closeFn = func() error { return nil }
	specs, err := c.specs()
	if err != nil {
		return nil, nil, err
	}
	switch c.Source {
	case "consolidated":
		cs, err := c.consolidated()
		if err != nil {
			return nil, nil, err
		}
		s, err := consolidated.NewSource(consolidated.Config{Specs: cs}, consolidated.BusMembers(b), logger, reg)
		return s, closeFn, err
	case "synthetic":
		s, err := synthetic.NewSource(c.synthetic(), logger)
		return s, closeFn, err
	case "kraken", "binance", "coinbase":
		h, err := c.handler(c.Source, specs, logger)
		if err != nil {
			return nil, nil, err
		}
		var lc live.Config
		if c.Record != "" {
			f, err := os.OpenFile(c.Record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, nil, fmt.Errorf("--record: %w", err)
			}
			lc.Recorder = capture.NewRecorder(f)
			closeFn = lc.Recorder.Close
		}
		if err := reg.Register(h.Stats()); err != nil {
			return nil, nil, errors.Join(err, closeFn())
		}
		return live.New(h, lc, logger), closeFn, nil
	case "capture":
		h, err := c.handler(c.CaptureFormat, specs, logger)
		if err != nil {
			return nil, nil, err
		}
		r, closeFiles, err := capture.Open(c.CaptureFile...)
		if err != nil {
			return nil, nil, err
		}
		if err := reg.Register(h.Stats()); err != nil {
			return nil, nil, errors.Join(err, closeFiles())
		}
		return capture.New(h, r, capture.Config{Speed: c.Speed, RecordedTime: c.CaptureRecordedTime}, logger), closeFiles, nil
	case "file":
		s, err := file.Open(file.Config{Format: file.Format(c.FileFormat), Paths: c.File, Instrument: c.FileInstrument,
			Speed: c.Speed, Specs: specs, FXSize: c.FXSize}, logger)
		if err != nil {
			return nil, nil, err
		}
		if err := reg.Register(s.Stats()); err != nil {
			return nil, nil, errors.Join(err, s.Close())
		}
		return s, s.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown source %q", c.Source)
}
