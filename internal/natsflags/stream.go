package natsflags

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/bus"
)

// Stream are the event stream's limits. Every process that may create the stream when it is
// missing (ingest, feed, tickctl import) embeds them with `embed:""`, so that whichever starts
// first creates it with the same settings; a stream that exists keeps its own (changing them is
// the admin role's: tickctl stream).
type Stream struct {
	StreamMaxAge   time.Duration `default:"24h" help:"Keep events in the JetStream stream at most this long (used when this process creates the stream)." group:"Stream"`
	StreamMaxBytes ByteSize      `default:"8GiB" help:"Keep at most this much in the stream (e.g. 512MiB, 8GiB); the oldest events go first (used when this process creates the stream)." group:"Stream"`
	StreamReplicas int           `default:"1" help:"Copies of the stream on a NATS cluster (3 in production; 1 with an embedded server)." group:"Stream"`
}

// Validate checks the limits.
func (s Stream) Validate() error {
	if s.StreamReplicas < 1 || s.StreamReplicas > 5 {
		return fmt.Errorf("--stream-replicas %d outside 1..5", s.StreamReplicas)
	}
	if s.StreamMaxAge <= 0 || s.StreamMaxBytes <= 0 {
		return fmt.Errorf("--stream-max-age and --stream-max-bytes must be > 0")
	}
	return nil
}

// Config is the stream configuration for bus.EnsureStream.
func (s Stream) Config() bus.StreamConfig {
	return bus.StreamConfig{MaxAge: s.StreamMaxAge, MaxBytes: int64(s.StreamMaxBytes), Replicas: s.StreamReplicas}
}

// ByteSize is a size in bytes written as 123, 512MiB, 8GiB, 1GB...
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

// ParseByteSize reads a size: digits, then an optional unit (KiB, MiB, GiB, TiB, KB, MB, GB,
// TB, B).
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > (1<<63-1)/n) {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1073741824, 512MiB, 8GiB)", s)
	}
	return ByteSize(n * mult), nil
}

// Decode implements kong.MapperValue.
func (b *ByteSize) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("size", &s); err != nil {
		return err
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b ByteSize) String() string {
	for _, u := range byteUnits[:4] {
		if b >= ByteSize(u.mult) && int64(b)%u.mult == 0 && int64(b)/u.mult < 1024 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
