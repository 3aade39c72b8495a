package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/natsflags"
)

// envPrefix starts tickctl's environment variables (shared with ingest).
const envPrefix = "TICKWIRE"

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // the command failed
	exitConfig = 2 // invalid flags or environment
	// exitRejected: the command ran to the end but left rows out (import: bad rows, each
	// named on stderr; the good rows are stored).
	exitRejected = 3
)

// cli is every command and the flags they share: flags > TICKWIRE_* environment > defaults.
type cli struct {
	NATSURL        string        `name:"nats-url" default:"nats://127.0.0.1:4222" help:"NATS server URL(s), comma separated (not used by tail)."`
	ConnectTimeout time.Duration `default:"5s" help:"How long to wait for NATS to answer before giving up."`
	LogLevel       string        `enum:"debug,info,warn,error" default:"warn" help:"Log level on stderr (${enum})."`

	// Credentials: by default user "tickctl" with the password in .data/nats-auth (written
	// by the feed that embeds NATS in "make run"); "stream" needs --nats-user admin.
	NATSAuth natsflags.Flags `embed:""`

	Export        exportCmd        `cmd:"" help:"Export the stored events of a time window to a history file."`
	Import        importCmd        `cmd:"" help:"Import a history file into the event store."`
	Replay        replayCmd        `cmd:"" help:"Run a replay session of a stored window until interrupted."`
	ReplayControl replayControlCmd `cmd:"" name:"replay-control" help:"Pause, resume, seek or change the speed of a replay session."`
	Tail          tailCmd          `cmd:"" help:"Print the messages of a feed (live or a replay session), one line each."`
	Stream        streamCmd        `cmd:"" help:"Show the event stream's limits and contents, or change its limits (admin)."`
	Token         tokenCmd         `cmd:"" help:"Mint a feed token (JWT) from an HS256 key file."`
	Revoke        revokeCmd        `cmd:"" help:"Revoke a token (--jti) or a subject's tokens (--sub) on every feed replica, or --list the revocations."`
	Unrevoke      unrevokeCmd      `cmd:"" help:"Remove a revocation (--jti or --sub)."`
}

const description = `Tickwire operations: history export/import, replay sessions, and a terminal subscriber.

Every flag can also be set in the environment as TICKWIRE_<FLAG> (e.g. TICKWIRE_NATS_URL=nats://nats:4222); flags win over the environment.

Times (T) are RFC3339 ("2025-03-14T15:09:26Z", "2025-03-14T16:09:26.5+01:00"), "now", or relative to now with a sign ("-15m", "-1h30m", "+10s").`

// env is what every command's Run gets.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	logger         *slog.Logger
	natsURL        string
	natsAuth       bus.Auth
	connectTimeout time.Duration
	now            time.Time // resolves relative times, once per run
}

// exitPanic unwinds from kong's exit (after --help, or a usage error) back to run.
type exitPanic struct{ code int }

// run parses args and runs the command, returning the exit code. main calls it; so do tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	var c cli
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			code = e.code
		}
	}()
	parser, err := kong.New(&c,
		kong.Name("tickctl"),
		kong.Description(description),
		kong.DefaultEnvars("TICKWIRE"),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitPanic{code}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		natsflags.Vars(bus.RoleTickctl, envPrefix),
	)
	if err != nil {
		fmt.Fprintln(stderr, "tickctl:", err)
		return exitConfig
	}
	kctx, err := parser.Parse(markSeekValue(args))
	if err != nil {
		fmt.Fprintln(stderr, "tickctl:", err)
		return exitConfig
	}
	auth, err := c.NATSAuth.Auth(envPrefix)
	if err != nil {
		fmt.Fprintln(stderr, "tickctl:", err)
		return exitConfig
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel)) // enum-checked
	e := &env{
		ctx: ctx, stdout: stdout, stderr: stderr,
		logger:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		natsURL: c.NATSURL, natsAuth: auth, connectTimeout: c.ConnectTimeout, now: time.Now(),
	}
	if err := kctx.Run(e); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintln(stderr, "tickctl:", err)
			return exitConfig
		}
		if errors.Is(err, errRejected) {
			fmt.Fprintln(stderr, "tickctl:", err)
			return exitRejected
		}
		fmt.Fprintln(stderr, "tickctl:", err)
		return exitFail
	}
	return exitOK
}

// errUsage marks an error in the command's arguments found after parsing.
var errUsage = errors.New("usage")

// errRejected marks a command that completed without some of its input (exitRejected).
var errRejected = errors.New("rows rejected")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// connect connects to NATS and waits (up to --connect-timeout) until connected: the bus
// retries forever in the background, which suits servers, not a command a person waits for.
func (e *env) connect() (*bus.Bus, error) {
	b, err := bus.Connect(e.ctx, bus.Config{URL: e.natsURL, Name: "tickctl", Auth: e.natsAuth}, e.logger, nil)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(e.connectTimeout)
	for !b.Connected() {
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			last := b.LastError()
			_ = b.Close()
			switch {
			case errors.Is(last, bus.ErrAuth):
				return nil, fmt.Errorf("NATS at %s refused %s: %w", e.natsURL, e.natsAuth, last)
			case last != nil:
				return nil, fmt.Errorf("cannot reach NATS at %s within %s: %w", e.natsURL, e.connectTimeout, last)
			}
			return nil, fmt.Errorf("cannot reach NATS at %s within %s", e.natsURL, e.connectTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b, nil
}

func closeBus(e *env, b *bus.Bus) {
	if err := b.Close(); err != nil {
		e.logger.Warn("closing NATS", "err", err)
	}
}

// rate formats n events over d as events/s.
func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f events/s", float64(n)/d.Seconds())
}
