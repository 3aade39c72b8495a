package bus

import "context"

// DiagnoseForTest runs b's store diagnosis of a publish error.
func DiagnoseForTest(ctx context.Context, b *Bus, err error) (cause, detail string) {
	return b.health.diagnose(ctx, err)
}
