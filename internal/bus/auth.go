package bus

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/tickwire/tickwire/internal/lease"
)

// NATS is never open (docs/OPERATIONS.md, Security: NATS). Every process connects as a user
// whose permissions allow what its role needs and nothing more:
//
//	ingest   publishes events; creates the event stream if it is missing (never updates it);
//	         reads an instrument's last stored event (to continue its sequence); campaigns
//	         for its lease (active and standby, internal/lease)
//	feed     reads the stream through its own consumers; subscribes to replay sessions and
//	         sends them control requests; runs replay sessions clients start (publishes their
//	         events and status, answers their control requests); publishes no live event
//	tickctl  reads the stream (export, replay), publishes events (import), runs and controls
//	         replay sessions
//	admin    creates and updates the event stream's configuration (retention, replicas);
//	         revokes tokens as tickctl does
//	consolidator
//	         an ingest that builds consolidated instruments from other instruments' events
//	         (ingest --source consolidated): what ingest may do, plus reading the stream
//	         through its own consumers and asking the members' ingest for snapshots
//
// and the token revocation list (revoke.go): feed reads it (and creates the bucket if it is
// missing, as ingest does the stream); tickctl and admin also write it; ingest has no access.
//
// Nobody may purge or delete the stream or delete messages: those requests are denied to every
// user (removing history is an operator's act on the server, not a client's). Each user
// receives replies on its own inbox prefix, _INBOX_<user>, and may subscribe to no other inbox.

// Role is a set of NATS permissions of a Tickwire process.
type Role string

// The roles.
const (
	RoleIngest  Role = "ingest"
	RoleFeed    Role = "feed"
	RoleTickctl Role = "tickctl"
	RoleAdmin   Role = "admin"
	// RoleConsolidator is the user of `ingest --source consolidated`.
	RoleConsolidator Role = "consolidator"
)

// Roles returns every role, in the order of the table above.
func Roles() []Role { return []Role{RoleIngest, RoleFeed, RoleTickctl, RoleAdmin, RoleConsolidator} }

// jsAPI is the JetStream API subject prefix (default domain).
const jsAPI = "$JS.API."

// replaySubjects is every replay session subject (replay.go).
const replaySubjects = replayPrefix + ">"

// Permissions is what a user may publish and subscribe to. Deny wins over Allow.
type Permissions struct {
	PublishAllow, PublishDeny     []string
	SubscribeAllow, SubscribeDeny []string
}

// InboxPrefix is the reply subject prefix of user: _INBOX_<user>. A user may subscribe to its
// own inbox only, so no user reads another's replies.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// deniedAPI lists the JetStream requests no Tickwire user may make, on any stream, whatever
// its role: they remove stored history.
func deniedAPI() []string {
	return []string{
		jsAPI + "STREAM.PURGE.>",
		jsAPI + "STREAM.DELETE.>",
		jsAPI + "STREAM.MSG.DELETE.>",
	}
}

// readAPI is what reading the stream needs: its info, a subject's last message (direct get
// when the stream allows it, else the message API), and ordered consumers (created, pulled
// from, looked up and deleted when they reset). Consumer names are random single tokens.
func readAPI(stream string) []string {
	return []string{
		jsAPI + "STREAM.INFO." + stream,
		jsAPI + "DIRECT.GET." + stream,
		jsAPI + "DIRECT.GET." + stream + ".>",
		jsAPI + "STREAM.MSG.GET." + stream,
		jsAPI + "CONSUMER.CREATE." + stream + ".>",
		jsAPI + "CONSUMER.MSG.NEXT." + stream + ".*",
		jsAPI + "CONSUMER.INFO." + stream + ".*",
		jsAPI + "CONSUMER.DELETE." + stream + ".*",
	}
}

// revocationRead is what watching and reading the revocation bucket needs: the KV read
// requests on its stream, and flow-control replies to the push consumer a KV watch is.
// Creating the bucket if it is missing needs the account's limits ($JS.API.INFO).
func revocationRead() []string {
	return append(readAPI(revocationStream),
		"$JS.FC."+revocationStream+".>",
		jsAPI+"STREAM.CREATE."+revocationStream,
		jsAPI+"INFO",
	)
}

// leaseAPI is what campaigning for a lease needs (internal/lease): creating the bucket when it
// is missing, binding to it, reading a key (Create reads it back after a refusal), and writing
// keys (a create, renewal or release is a publish on the bucket's subjects).
func leaseAPI() []string {
	return []string{
		jsAPI + "STREAM.CREATE." + lease.Stream,
		jsAPI + "STREAM.INFO." + lease.Stream,
		jsAPI + "DIRECT.GET." + lease.Stream + ".>",
		jsAPI + "STREAM.MSG.GET." + lease.Stream,
		"$KV." + lease.Bucket + ".>",
	}
}

// revocationWrite is what storing and removing revocations needs: publishing to the
// bucket's subjects (a KV put or delete is a publish there, acknowledged on the inbox).
func revocationWrite() []string { return []string{"$KV." + RevocationBucket + ".>"} }

// RolePermissions returns the permissions of role for a user named user (whose inbox they
// include) on the event stream named stream.
func RolePermissions(role Role, user, stream string) (Permissions, error) {
	inbox := InboxPrefix(user) + ".>"
	p := Permissions{PublishDeny: deniedAPI(), SubscribeAllow: []string{inbox}}
	switch role {
	case RoleIngest, RoleConsolidator:
		p.PublishAllow = []string{
			EventSubjects,
			jsAPI + "STREAM.CREATE." + stream, // create if missing; the same config again is a no-op
			jsAPI + "STREAM.INFO." + stream,
			jsAPI + "INFO",                        // account usage: why the store refuses writes (health.go)
			jsAPI + "DIRECT.GET." + stream + ".>", // LastPosition
			jsAPI + "STREAM.MSG.GET." + stream,
		}
		p.PublishAllow = append(p.PublishAllow, leaseAPI()...)               // active and standby (ingest --lease)
		p.SubscribeAllow = append(p.SubscribeAllow, SnapshotRequestSubjects) // from feeds (snapshotreq.go)
		if role == RoleConsolidator {                                        // reads its members' events, asks their ingest for snapshots
			p.PublishAllow = appendNew(p.PublishAllow, readAPI(stream)...)
			p.PublishAllow = append(p.PublishAllow, SnapshotRequestSubjects)
		}
	case RoleFeed:
		// STREAM.CREATE: on a fresh store the first process creates the stream; a create never
		// changes a stream that exists (refused when its config differs).
		p.PublishAllow = append(readAPI(stream), replayPrefix+"*.control", jsAPI+"STREAM.CREATE."+stream,
			SnapshotRequestSubjects) // a broken book asks ingest for a snapshot (snapshotreq.go)
		p.PublishAllow = append(p.PublishAllow, revocationRead()...)
		// State checkpoints (checkpoint.go): read, create the stream, write chunks (a rollup, not
		// a purge, drops the previous checkpoint of a slot).
		p.PublishAllow = append(p.PublishAllow, readAPI(CheckpointStream(stream))...)
		p.PublishAllow = append(p.PublishAllow, jsAPI+"STREAM.CREATE."+CheckpointStream(stream), checkpointSubjects(stream))
		p.SubscribeAllow = append(p.SubscribeAllow, replayPrefix+"*.events.>", replayPrefix+"*.status")
		// Replay sessions a feed runs itself (feed --replay-start, internal/feed/replaystart.go):
		// it publishes their events and status and answers their control requests. Replies
		// to control requests travel on the session's reply subjects (replay.go), both ways.
		p.PublishAllow = append(p.PublishAllow, replayPrefix+"*.events.>", replayPrefix+"*.status", replayPrefix+"*.reply.>")
		p.SubscribeAllow = append(p.SubscribeAllow, replayPrefix+"*.control", replayPrefix+"*.reply.>")
	case RoleTickctl:
		p.PublishAllow = append(readAPI(stream), EventSubjects, replaySubjects, jsAPI+"STREAM.CREATE."+stream)
		p.PublishAllow = append(p.PublishAllow, revocationRead()...)
		p.PublishAllow = append(p.PublishAllow, revocationWrite()...)
		p.SubscribeAllow = append(p.SubscribeAllow, replaySubjects)
	case RoleAdmin:
		p.PublishAllow = []string{
			jsAPI + "INFO",
			jsAPI + "STREAM.CREATE." + stream,
			jsAPI + "STREAM.UPDATE." + stream,
			jsAPI + "STREAM.INFO." + stream,
		}
		p.PublishAllow = appendNew(p.PublishAllow, revocationRead()...)
		p.PublishAllow = append(p.PublishAllow, revocationWrite()...)
	default:
		return Permissions{}, fmt.Errorf("%w: unknown role %q", ErrAuth, role)
	}
	return p, nil
}

// User is a NATS user of a Tickwire server: a name and the roles whose permissions it holds
// (the union of them).
type User struct {
	Name  string
	Roles []Role
}

// DefaultUsers returns one user per role, named after it.
func DefaultUsers() []User {
	var us []User
	for _, r := range Roles() {
		us = append(us, User{Name: string(r), Roles: []Role{r}})
	}
	return us
}

// validUserName: user names become a subject token (the inbox) and a file name.
func validUserName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: user name %q: length must be 1..64", ErrAuth, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			continue
		}
		return fmt.Errorf("%w: user name %q: byte %q not allowed (want [a-z0-9_-])", ErrAuth, name, c)
	}
	return nil
}

// Permissions returns the union of the permissions of u's roles on stream.
func (u User) Permissions(stream string) (Permissions, error) {
	if err := validUserName(u.Name); err != nil {
		return Permissions{}, err
	}
	if len(u.Roles) == 0 {
		return Permissions{}, fmt.Errorf("%w: user %q has no role", ErrAuth, u.Name)
	}
	var all Permissions
	for _, r := range u.Roles {
		p, err := RolePermissions(r, u.Name, stream)
		if err != nil {
			return Permissions{}, err
		}
		all.PublishAllow = appendNew(all.PublishAllow, p.PublishAllow...)
		all.PublishDeny = appendNew(all.PublishDeny, p.PublishDeny...)
		all.SubscribeAllow = appendNew(all.SubscribeAllow, p.SubscribeAllow...)
		all.SubscribeDeny = appendNew(all.SubscribeDeny, p.SubscribeDeny...)
	}
	return all, nil
}

func appendNew(dst []string, src ...string) []string {
	for _, s := range src {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// Auth is how a client authenticates to NATS: a user with a password (given, or read from a
// file at every connection attempt, so a file written later or rotated is picked up), or a NATS
// credentials file (user JWT and nkey seed, for servers in operator mode). The zero Auth
// connects anonymously, which Tickwire's servers refuse. TLS is optional: CAFile verifies the
// server; CertFile and KeyFile present a client certificate.
type Auth struct {
	User         string
	Password     string `json:"-"`
	PasswordFile string
	CredsFile    string
	// InboxPrefix overrides the reply subject prefix; default InboxPrefix(User) with a User,
	// else NATS's "_INBOX".
	InboxPrefix string

	CAFile, CertFile, KeyFile string
}

// String describes a without its secret.
func (a Auth) String() string {
	var parts []string
	switch {
	case a.CredsFile != "":
		parts = append(parts, "creds "+a.CredsFile)
	case a.User != "" && a.PasswordFile != "":
		parts = append(parts, "user "+a.User+" (password file "+a.PasswordFile+")")
	case a.User != "" && a.Password != "":
		parts = append(parts, "user "+a.User+" (password given)")
	case a.User != "":
		parts = append(parts, "user "+a.User+" (no password)")
	default:
		parts = append(parts, "anonymous")
	}
	if a.CAFile != "" || a.CertFile != "" {
		parts = append(parts, "tls")
	}
	return strings.Join(parts, ", ")
}

func (a Auth) inboxPrefix() string {
	if a.InboxPrefix != "" {
		return a.InboxPrefix
	}
	if a.User != "" && a.CredsFile == "" {
		return InboxPrefix(a.User)
	}
	return ""
}

func (a Auth) validate() error {
	if a.CredsFile != "" && (a.User != "" || a.Password != "" || a.PasswordFile != "") {
		return fmt.Errorf("%w: a credentials file and a user/password exclude each other", ErrAuth)
	}
	if a.Password != "" && a.PasswordFile != "" {
		return fmt.Errorf("%w: a password and a password file exclude each other", ErrAuth)
	}
	if (a.Password != "" || a.PasswordFile != "") && a.User == "" {
		return fmt.Errorf("%w: a password needs a user", ErrAuth)
	}
	if (a.CertFile == "") != (a.KeyFile == "") {
		return fmt.Errorf("%w: a client certificate needs both the certificate and the key file", ErrAuth)
	}
	return nil
}

// ReadPasswordFile reads a password file: its content without surrounding white space. It
// refuses a file that other users may read (like ssh with keys), and an empty one.
func ReadPasswordFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: password file: %w", ErrAuth, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: password file %s has mode %v: readable by others (chmod 600 it)", ErrAuth, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: password file: %w", ErrAuth, err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%w: password file %s is empty", ErrAuth, path)
	}
	return pw, nil
}

// PasswordFile returns the file holding user's password in an auth directory:
// <dir>/<user>.password.
func PasswordFile(dir, user string) string { return filepath.Join(dir, user+".password") }

// passwordBytes of randomness per generated password: 256 bits, beyond guessing.
const passwordBytes = 32

func newPassword() (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("%w: generate password: %w", ErrAuth, err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// loadOrCreatePassword returns user's password from dir, generating it (mode 0600, written
// atomically) the first time. dir is created with mode 0700.
func loadOrCreatePassword(dir, user string) (string, error) {
	path := PasswordFile(dir, user)
	pw, err := ReadPasswordFile(path)
	if err == nil {
		return pw, nil
	}
	if _, serr := os.Stat(path); !os.IsNotExist(serr) {
		return "", err // exists but unusable: never overwrite an operator's file
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("%w: auth dir: %w", ErrAuth, err)
	}
	if pw, err = newPassword(); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "."+user+".password.*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("%w: write password: %w", ErrAuth, err)
	}
	defer os.Remove(tmp.Name()) // gone after a successful link
	if _, err := tmp.WriteString(pw + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("%w: write password: %w", ErrAuth, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("%w: write password: %w", ErrAuth, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("%w: write password: %w", ErrAuth, err)
	}
	// Link, not rename: if another process created the file meanwhile, keep theirs.
	if err := os.Link(tmp.Name(), path); err != nil {
		if os.IsExist(err) {
			return ReadPasswordFile(path)
		}
		return "", fmt.Errorf("%w: write password: %w", ErrAuth, err)
	}
	return pw, nil
}

// options returns the nats.go options that make a connection authenticate as a says.
func (a Auth) options(logger *slog.Logger) ([]nats.Option, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	case a.PasswordFile != "":
		// Read at every connection attempt: the file may be written after we start (the
		// embedding process creates it) or rotated.
		user, file := a.User, a.PasswordFile
		opts = append(opts, nats.UserInfoHandler(func() (string, string) {
			pw, err := ReadPasswordFile(file)
			if err != nil {
				logger.Warn("nats password unavailable; connecting without it", "user", user, "err", err)
			}
			return user, pw
		}))
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if p := a.inboxPrefix(); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	if a.CAFile != "" {
		opts = append(opts, nats.RootCAs(a.CAFile))
	}
	if a.CertFile != "" {
		opts = append(opts, nats.ClientCert(a.CertFile, a.KeyFile))
	}
	return opts, nil
}

// PasswordEnvVar is the environment variable that AuthConfig's output reads user's password
// from on the NATS server: TICKWIRE_NATS_<USER>_PASSWORD.
func PasswordEnvVar(user string) string {
	return "TICKWIRE_NATS_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_")) + "_PASSWORD"
}

// AuthConfig renders users and their permissions on stream as a nats-server configuration
// block (authorization { users = [...] }) for a cluster: the same rules the embedded server
// applies. Passwords are read from the server's environment (PasswordEnvVar), never written.
func AuthConfig(users []User, stream string) (string, error) {
	var b strings.Builder
	list := func(xs []string) string {
		q := make([]string, len(xs))
		for i, x := range xs {
			q[i] = `"` + x + `"`
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		p, err := u.Permissions(stream)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "    {\n      user: %q\n      password: $%s\n      permissions: {\n", u.Name, PasswordEnvVar(u.Name))
		fmt.Fprintf(&b, "        publish: {\n          allow: %s\n", list(p.PublishAllow))
		if len(p.PublishDeny) > 0 {
			fmt.Fprintf(&b, "          deny: %s\n", list(p.PublishDeny))
		}
		fmt.Fprintf(&b, "        }\n        subscribe: {\n          allow: %s\n", list(p.SubscribeAllow))
		if len(p.SubscribeDeny) > 0 {
			fmt.Fprintf(&b, "          deny: %s\n", list(p.SubscribeDeny))
		}
		b.WriteString("        }\n")
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}
