package bus

import "context"

// DiagnoseForTest runs b's store diagnosis of a publish error.
func DiagnoseForTest(ctx context.Context, b *Bus, err error) (cause, detail string) {
	return b.health.diagnose(ctx, err)
}

// SetBeforePassForTest makes a Bus connected with cfg call f before each batcher pass.
func SetBeforePassForTest(cfg *Config, f func()) { cfg.beforePass = f }

// PublishConnDownForTest reports whether b has a publish connection of its own that is not
// connected (it saw a cut).
func PublishConnDownForTest(b *Bus) bool {
	p := b.pub.Load()
	return p != nil && p.own && !p.nc.IsConnected()
}

// SetAfterPublishDialForTest makes a Bus connected with cfg call f each time it has opened a
// publish connection of its own, before using it.
func SetAfterPublishDialForTest(cfg *Config, f func()) { cfg.afterPublishDial = f }
