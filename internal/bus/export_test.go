package bus

import "context"

// DiagnoseForTest runs b's store diagnosis of a publish error.
func DiagnoseForTest(ctx context.Context, b *Bus, err error) (cause, detail string) {
	return b.health.diagnose(ctx, err)
}

// SetBeforePassForTest makes a Bus connected with cfg call f before each batcher pass.
func SetBeforePassForTest(cfg *Config, f func()) { cfg.beforePass = f }
