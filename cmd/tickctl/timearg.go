package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// timeArg is a time given on the command line: absolute (RFC3339), "now", or a signed duration
// relative to a reference time (now, or for replay-control seek the session's clock).
type timeArg struct {
	raw      string
	abs      time.Time
	rel      time.Duration
	relative bool
}

func parseTimeArg(s string) (timeArg, error) {
	s = strings.TrimSpace(s)
	t := timeArg{raw: s}
	switch {
	case s == "now":
		t.relative = true
		return t, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s)
		if err != nil {
			return t, fmt.Errorf("time %q: %w", s, err)
		}
		t.rel, t.relative = d, true
		return t, nil
	}
	abs, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("time %q: want RFC3339 (2025-03-14T15:09:26Z), \"now\" or a signed duration (-15m, +10s)", s)
	}
	t.abs = abs
	return t, nil
}

// isSignedDuration reports whether s looks like "-15m" or "+1h" (a sign, then a digit).
func isSignedDuration(s string) bool {
	return len(s) >= 2 && (s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9'
}

// Resolve returns the time, relative ones taken from ref.
func (t timeArg) Resolve(ref time.Time) time.Time {
	if t.relative {
		return ref.Add(t.rel)
	}
	return t.abs
}

func (t timeArg) set() bool { return t.raw != "" }

func (t timeArg) String() string { return t.raw }

// Decode implements kong.MapperValue.
func (t *timeArg) Decode(ctx *kong.DecodeContext) error {
	// A relative time in the past ("-15m") looks like a short flag to kong: take it anyway.
	tok := ctx.Scan.Pop()
	s := tok.String()
	if !tok.IsValue() && !(tok.Type == kong.UntypedToken && isSignedDuration(s)) {
		return fmt.Errorf("expected a time value but got %q", s)
	}
	v, err := parseTimeArg(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}
