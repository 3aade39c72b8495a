package capture_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/source/capture"
)

// ReadSDKJSON takes the shapes recorders write under "init" and "updates": a list of frames or
// one frame. The frames here are written by hand in the shapes of python-kraken-sdk's
// tests/spot/fixture/orderbook-v1.json and orderbook-v2.json (v2: "init" is one message object).
func TestReadSDKJSONShapes(t *testing.T) {
	const (
		v2Snap = `{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":0}]}`
		v2Upd  = `{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":0}]}`
		v1Snap = `[336,{"as":[["1.0","1.0","1.0"]],"bs":[["0.5","1.0","1.0"]]},"book-10","XBT/USD"]`
		v1HB   = `{"event":"heartbeat"}`
	)
	for _, tc := range []struct {
		name    string
		doc     string
		want    []string // frames in order, "conn:msg"
		wantErr error    // errors.Is
		errHas  string
	}{
		{name: "lists", doc: `{"init":[` + v1HB + `,` + v1Snap + `],"updates":[` + v1HB + `]}`,
			want: []string{"init:" + v1HB, "init:" + v1Snap, "updates:" + v1HB}},
		{name: "single object init (v2 fixture)", doc: `{"init":` + v2Snap + `,"updates":[` + v2Upd + `,` + v2Upd + `]}`,
			want: []string{"init:" + v2Snap, "updates:" + v2Upd, "updates:" + v2Upd}},
		{name: "single v1 array frame", doc: `{"init":` + v1Snap + `,"updates":[]}`,
			want: []string{"init:" + v1Snap}},
		{name: "updates only, init null", doc: `{"init":null,"updates":[` + v1HB + `]}`,
			want: []string{"updates:" + v1HB}},
		{name: "number", doc: `{"init":42,"updates":[]}`, wantErr: capture.ErrSDKShape, errHas: `"init"`},
		{name: "string", doc: `{"init":[],"updates":"frames"}`, wantErr: capture.ErrSDKShape, errHas: `"updates"`},
		{name: "empty lists", doc: `{"init":[],"updates":[]}`, wantErr: capture.ErrRecord, errHas: "no init/updates frames"},
		{name: "empty object", doc: `{}`, wantErr: capture.ErrRecord, errHas: "no init/updates frames"},
		{name: "empty input", doc: ``, wantErr: capture.ErrRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := capture.ReadSDKJSON(strings.NewReader(tc.doc))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.errHas)
				}
				if errors.Is(err, capture.ErrSDKShape) && !strings.Contains(err.Error(), "list of frames or a single frame") {
					t.Errorf("error does not name the expected shapes: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, r := range recs {
				if r.Line != int64(i+1) || r.Dir != "recv" {
					t.Errorf("record %d: line %d dir %q", i, r.Line, r.Dir)
				}
				got = append(got, r.Conn+":"+string(r.Msg))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
