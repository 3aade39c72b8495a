package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and unmounts it in t.Cleanup; it
// skips the test where mounting is not allowed (not root). It is a real file system that
// fills up: JetStream gets ENOSPC from write(2), as on a full disk.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file into dir until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatal(err)
			}
			return path
		}
	}
}

// TestEmbeddedDiskFullRecovers fills the file system under a running embedded server. The
// publisher's store health reports not_storing (JetStream answers its API but no write), the
// server's store watch reports the fault (tickwire_nats_store_fault), and once space is freed it
// restarts JetStream by itself and publishes are acknowledged again, on the same stream.
func TestEmbeddedDiskFullRecovers(t *testing.T) {
	disk := smallDisk(t, "8m")
	sreg := prometheus.NewRegistry()
	var slogs syncBuffer
	s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: filepath.Join(disk, "nats"), Users: bustest.Users(), Metrics: sreg},
		slog.New(slog.NewTextHandler(&slogs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	storeFault := func() float64 { return gaugeOf(t, sreg, "tickwire_nats_store_fault") }

	ctx := ctxT(t)
	b, err := bus.Connect(ctx, bus.Config{URL: s.ClientURL(), Auth: s.Auth(bustest.TestUser), PublishAckTimeout: 500 * time.Millisecond},
		nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.EnsureStream(ctx, bus.StreamConfig{MaxBytes: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	publish := func(n int) error {
		for range n {
			seq++
			if err := b.Publish(ctx, bigTrade("x:A", seq)); err != nil {
				t.Fatal(err)
			}
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return b.Flush(fctx)
	}
	if err := publish(100); err != nil {
		t.Fatal(err)
	}

	filler := fill(t, disk)
	deadline := time.Now().Add(10 * time.Second)
	for err := publish(200); !errors.Is(err, bus.ErrPublish); err = publish(200) {
		if time.Now().After(deadline) {
			t.Fatalf("publishes still acknowledged on a full disk (%v)", err)
		}
	}
	testwait.For(t, 5*time.Second, "the condition", func() bool { return b.StoreStatus().Fault == bus.StoreNotStoring })
	if st := b.StoreStatus(); !strings.Contains(st.Detail, "stores nothing") || !strings.Contains(st.Detail, "stream TICKWIRE_EVENTS") {
		t.Fatalf("publisher's status %+v", st)
	}
	testwait.For(t, 5*time.Second, "the condition", func() bool { return storeFault() == 1 })
	if !strings.Contains(slogs.String(), "no space left on device") {
		t.Fatalf("the server's reason is not in its log:\n%s", slogs.String())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var last uint64
	deadline = time.Now().Add(20 * time.Second)
	for {
		err := publish(1)
		if err == nil {
			last = seq
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish acknowledged 20 s after space was freed: %v\nserver log:\n%s", err, slogs.String())
		}
	}
	testwait.For(t, 5*time.Second, "the condition", func() bool { return b.StoreStatus().Fault == "" })
	if storeFault() != 0 || counterOf(t, sreg, "tickwire_nats_store_restarts_total") < 1 {
		t.Fatalf("store watch: fault %v after recovery", storeFault())
	}
	if _, got, found, err := b.LastPosition(ctx, "x:A"); err != nil || !found || got != last {
		t.Fatalf("last stored seq %d %t %v; want %d", got, found, err, last)
	}
}

// gaugeOf returns the value of the unlabelled gauge name.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// counterOf returns the value of the unlabelled counter name.
func counterOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
