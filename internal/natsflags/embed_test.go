package natsflags

import "testing"

func TestEmbedValidate(t *testing.T) {
	ok := Embed{On: true, Listen: "127.0.0.1:4222", DataDir: ".data/nats", Sync: "2m"}
	for _, tc := range []struct {
		name string
		edit func(*Embed)
		ok   bool
	}{
		{"defaults", func(*Embed) {}, true},
		{"random port", func(e *Embed) { e.Listen = "127.0.0.1:-1" }, true},
		{"sync always", func(e *Embed) { e.Sync = "always" }, true},
		{"highest port", func(e *Embed) { e.Listen = "127.0.0.1:65535" }, true},
		{"port past 65535", func(e *Embed) { e.Listen = "127.0.0.1:65536" }, false},
		{"port below -1", func(e *Embed) { e.Listen = "127.0.0.1:-2" }, false},
		{"no port", func(e *Embed) { e.Listen = "127.0.0.1" }, false},
		{"no data dir", func(e *Embed) { e.DataDir = "" }, false},
		{"bad sync", func(e *Embed) { e.Sync = "sometimes" }, false},
		{"off: nothing checked", func(e *Embed) { e.On, e.Listen, e.Sync = false, "junk", "junk" }, true},
	} {
		e := ok
		tc.edit(&e)
		if err := e.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
