package feed

import (
	"strconv"
	"testing"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TestBoundedLabels: the first maxLabelSeries distinct instruments keep their own label, at the
// limit too; the next is "other"; one seen before keeps its label after the limit.
func TestBoundedLabels(t *testing.T) {
	var b boundedLabels
	for i := range maxLabelSeries {
		id := "x:" + strconv.Itoa(i)
		if got := b.of(id); got != id {
			t.Fatalf("%d-th instrument labelled %q", i+1, got)
		}
	}
	if got := b.of("x:past"); got != otherLabel {
		t.Fatalf("past the limit: %q, want %q", got, otherLabel)
	}
	if got := b.of("x:0"); got != "x:0" {
		t.Fatalf("an instrument seen before the limit: %q", got)
	}
}

// TestReasonLabels: every snapshot reason has its own label in
// tickwire_feed_snapshots_sent_total, a reason added to the proto later included (HISTORY_GONE
// was counted as "unspecified").
func TestReasonLabels(t *testing.T) {
	values := pb.SnapshotReason(0).Descriptor().Values()
	seen := map[string]pb.SnapshotReason{}
	for i := range values.Len() {
		r := pb.SnapshotReason(values.Get(i).Number())
		label := reasonLabel(r)
		if r == pb.SnapshotReason_SNAPSHOT_REASON_UNSPECIFIED {
			continue
		}
		if label == "unspecified" {
			t.Errorf("%v is counted as unspecified", r)
		}
		if other, dup := seen[label]; dup {
			t.Errorf("%v and %v share the label %q", r, other, label)
		}
		seen[label] = r
	}
}
