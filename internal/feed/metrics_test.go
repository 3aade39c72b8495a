package feed

import (
	"strconv"
	"testing"
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
