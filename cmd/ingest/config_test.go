package main

import (
	"testing"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/natsflags"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--embed-nats", "--nats-listen", "127.0.0.1:-1", "--stream-max-bytes", "1GiB"}, true},
		{[]string{"--synthetic-depth", "5"}, false},
		{[]string{"--synthetic-instruments", "0"}, false},
		{[]string{"--source", "kraken"}, false},
		{[]string{"--embed-nats", "--nats-listen", "nohost"}, false},
		{[]string{"--checkpoint-interval", "0s"}, false},
		{[]string{"--log-level", "loud"}, false},
		{[]string{"--nats-cert", "c.pem"}, false},
		{[]string{"--nats-creds", "u.creds", "--nats-password-file", "pw"}, false},
		{[]string{"--nats-password-file", "/nonexistent/ingest.password"}, false},
	}
	for _, tt := range tests {
		var cfg config
		p, err := kong.New(&cfg, kong.DefaultEnvars("TICKWIRE_TEST_UNSET"), natsflags.Vars(bus.RoleIngest, envPrefix))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Parse(tt.args)
		if (err == nil) != tt.ok {
			t.Errorf("Parse(%q) err = %v, want ok=%t", tt.args, err, tt.ok)
		}
	}
}
