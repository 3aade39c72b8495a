package wire

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// disconnects is proto/testdata/disconnects.json: what a client does after each way a
// connection ends. The Go client, the TypeScript client (web/client) and docs/PROTOCOL.md §12
// are each tested against it, so that they agree through the table, not by hand.
type disconnects struct {
	CloseCodes []struct {
		Code   int    `json:"code"`
		Name   string `json:"name"`
		Action string `json:"action"`
	} `json:"close_codes"`
	HandshakeStatuses []struct {
		Status int    `json:"status"`
		Action string `json:"action"`
	} `json:"handshake_statuses"`
}

func readDisconnects(t *testing.T) disconnects {
	t.Helper()
	b, err := os.ReadFile("../../proto/testdata/disconnects.json")
	if err != nil {
		t.Fatal(err)
	}
	var d disconnects
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("disconnects.json: %v", err)
	}
	if len(d.CloseCodes) == 0 || len(d.HandshakeStatuses) == 0 {
		t.Fatal("disconnects.json: empty table")
	}
	return d
}

// closeCodeNames names every close code constant of close.go; a constant added there and not
// here (or not in the table) fails TestDisconnectsCoverEveryCloseCode.
var closeCodeNames = map[string]int{
	"CloseNormal": CloseNormal, "CloseGoingAway": CloseGoingAway, "CloseBadFrame": CloseBadFrame,
	"CloseInvalidUTF8": CloseInvalidUTF8, "CloseMessageTooBig": CloseMessageTooBig,
	"CloseInternalError": CloseInternalError, "CloseTryAgainLater": CloseTryAgainLater,
	"CloseSlowConsumer": CloseSlowConsumer, "CloseWriteTimeout": CloseWriteTimeout,
	"ClosePingTimeout": ClosePingTimeout, "CloseRateLimited": CloseRateLimited, "CloseIdle": CloseIdle,
	"CloseTokenExpired": CloseTokenExpired, "CloseTokenRevoked": CloseTokenRevoked,
	"CloseProtocolError": CloseProtocolError, "CloseUnauthorized": CloseUnauthorized,
}

func TestDisconnectsReconnectable(t *testing.T) {
	for _, c := range readDisconnects(t).CloseCodes {
		t.Run(strconv.Itoa(c.Code), func(t *testing.T) {
			if c.Name != "" {
				v, ok := closeCodeNames[c.Name]
				if !ok || v != c.Code {
					t.Fatalf("table names %d %s; close.go has %s = %d (known: %v)", c.Code, c.Name, c.Name, v, ok)
				}
			}
			// fresh_token reconnects: the Go client asks its TokenSource again, and a fixed
			// token that was revoked then gets a final HTTP 401 at the handshake.
			want := map[string]bool{"stop": false, "backoff": true, "fresh_token": true}
			w, ok := want[c.Action]
			if !ok {
				t.Fatalf("unknown action %q", c.Action)
			}
			if got := Reconnectable(c.Code); got != w {
				t.Errorf("Reconnectable(%d) = %v; the table says %s", c.Code, got, c.Action)
			}
		})
	}
}

// TestDisconnectsCoverEveryCloseCode: every value of the CloseCode enum (the proto is where a
// new code is added) is a constant here and a row of the table.
func TestDisconnectsCoverEveryCloseCode(t *testing.T) {
	inTable := map[int]bool{}
	for _, c := range readDisconnects(t).CloseCodes {
		inTable[c.Code] = true
	}
	named := map[int]bool{}
	for _, v := range closeCodeNames {
		named[v] = true
	}
	values := pb.CloseCode(0).Descriptor().Values()
	for i := range values.Len() {
		code := int(values.Get(i).Number())
		if code == 0 {
			continue // CLOSE_CODE_UNSPECIFIED
		}
		// CLOSE_CODE_SLOW_CONSUMER is CloseSlowConsumer, and so on.
		var name strings.Builder
		name.WriteString("Close")
		for _, w := range strings.Split(strings.TrimPrefix(string(values.Get(i).Name()), "CLOSE_CODE_"), "_") {
			name.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
		if v, ok := closeCodeNames[strings.Replace(name.String(), "Utf8", "UTF8", 1)]; !ok || v != code {
			t.Errorf("%s = %d: close.go has %s = %d (%v)", values.Get(i).Name(), code, name.String(), v, ok)
		}
		if !named[code] || !inTable[code] {
			t.Errorf("%s = %d: a constant in close.go (%v) and a row in proto/testdata/disconnects.json (%v) both needed",
				values.Get(i).Name(), code, named[code], inTable[code])
		}
	}
	if len(closeCodeNames) != values.Len()-1 {
		t.Errorf("closeCodeNames has %d codes, the CloseCode enum %d", len(closeCodeNames), values.Len()-1)
	}
}

// TestProtocolCloseCodeTable: docs/PROTOCOL.md §12 lists exactly the table's named codes, each
// with its name and a "Reconnect?" answer that says the table's action.
func TestProtocolCloseCodeTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[int][]string{}
	row := regexp.MustCompile("(?m)^\\| (\\d{4}) \\| `(Close[A-Za-z0-9]+)` \\|(.*)\\|$")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		code, _ := strconv.Atoi(m[1])
		cells := strings.Split(m[3], "|")
		rows[code] = []string{m[2], strings.TrimSpace(cells[len(cells)-1])}
	}
	named := 0
	for _, c := range readDisconnects(t).CloseCodes {
		if c.Name == "" {
			continue
		}
		named++
		r, ok := rows[c.Code]
		if !ok {
			t.Errorf("PROTOCOL.md §12 has no row for %d %s", c.Code, c.Name)
			continue
		}
		if r[0] != c.Name {
			t.Errorf("PROTOCOL.md §12: %d is %s, the table says %s", c.Code, r[0], c.Name)
		}
		var prefix string
		switch c.Action {
		case "stop":
			prefix = "No"
		case "backoff":
			prefix = "Yes"
		case "fresh_token":
			prefix = "fresh token"
		}
		if !strings.Contains(r[1], prefix) || (c.Action == "stop") != strings.HasPrefix(r[1], "No") {
			t.Errorf("PROTOCOL.md §12: %d says %q; the table says %s", c.Code, r[1], c.Action)
		}
	}
	if named != len(rows) {
		t.Errorf("PROTOCOL.md §12 has %d rows, the table %d named codes", len(rows), named)
	}
}
