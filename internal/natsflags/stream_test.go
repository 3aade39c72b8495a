package natsflags

import "testing"

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1024", 1024, true}, {"8GiB", 8 << 30, true}, {"512MiB", 512 << 20, true}, {"1GB", 1e9, true},
		{"10B", 10, true}, {"", 0, false}, {"-1", 0, false}, {"1.5GiB", 0, false}, {"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v", tt.in, got, err)
		}
	}
	if s := ByteSize(8 << 30).String(); s != "8GiB" {
		t.Errorf("String = %q", s)
	}
}

func TestStreamValidate(t *testing.T) {
	for _, tc := range []struct {
		s  Stream
		ok bool
	}{
		{Stream{StreamMaxAge: 1, StreamMaxBytes: 1, StreamReplicas: 1}, true},
		{Stream{StreamMaxAge: 1, StreamMaxBytes: 1, StreamReplicas: 5}, true},
		{Stream{StreamMaxAge: 1, StreamMaxBytes: 1, StreamReplicas: 6}, false},
		{Stream{StreamMaxAge: 1, StreamMaxBytes: 1, StreamReplicas: 0}, false},
		{Stream{StreamMaxAge: 0, StreamMaxBytes: 1, StreamReplicas: 1}, false},
		{Stream{StreamMaxAge: 1, StreamMaxBytes: 0, StreamReplicas: 1}, false},
	} {
		if err := tc.s.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.s, err)
		}
	}
}
