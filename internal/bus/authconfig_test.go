package bus

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/tickwire-auth.conf")

const clusterConfHeader = `# Tickwire's NATS users and their permissions, for a NATS cluster (docs/OPERATIONS.md, Security: NATS).
# The embedded server applies the same rules. Generated from internal/bus/auth.go by
#   go test ./internal/bus -run TestClusterAuthConfig -update
# do not edit. Include it from nats-server.conf ("include ./tickwire-auth.conf") and set each
# user's password in the server's environment (TICKWIRE_NATS_<USER>_PASSWORD; a bcrypt hash from
# "nats server passwd" works as well as the password itself).
`

// The committed cluster configuration is what AuthConfig renders, and nats-server reads it into
// exactly the users and permissions the embedded server runs with.
func TestClusterAuthConfig(t *testing.T) {
	conf, err := AuthConfig(DefaultUsers(), DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	conf = clusterConfHeader + conf
	path := filepath.Join("..", "..", "deploy", "nats", "tickwire-auth.conf")
	if *update {
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != conf {
		t.Fatalf("%s is not what AuthConfig renders; run go test ./internal/bus -run TestClusterAuthConfig -update", path)
	}

	for _, u := range DefaultUsers() {
		t.Setenv(PasswordEnvVar(u.Name), "pw-"+u.Name)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := embeddedUsers(EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Users) != len(want) {
		t.Fatalf("%d users, want %d", len(opts.Users), len(want))
	}
	for i, u := range opts.Users {
		if u.Username != want[i].Username || u.Password != "pw-"+u.Username {
			t.Errorf("user %d: %s / %s", i, u.Username, u.Password)
		}
		if !reflect.DeepEqual(u.Permissions, want[i].Permissions) {
			t.Errorf("%s: permissions from the file\n%+v\nembedded\n%+v", u.Username, perms(u.Permissions), perms(want[i].Permissions))
		}
	}
}

func perms(p *server.Permissions) string {
	s := ""
	if p.Publish != nil {
		s += "pub " + fmtList(p.Publish.Allow) + " deny " + fmtList(p.Publish.Deny)
	}
	if p.Subscribe != nil {
		s += " sub " + fmtList(p.Subscribe.Allow) + " deny " + fmtList(p.Subscribe.Deny)
	}
	if p.Response != nil {
		s += " responses " + filepath.Base(p.Response.Expires.String())
	}
	return s
}

func fmtList(xs []string) string { return "[" + filepath.Join(xs...) + "]" }
