// Package natsflags holds the flags that say how a process authenticates to NATS, shared by
// every binary so that their names, defaults and help are written once (docs/OPERATIONS.md,
// Security: NATS).
package natsflags

import (
	"fmt"
	"os"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/bus"
)

// DefaultAuthDir is where a process that embeds NATS keeps its users' passwords, and where the
// others look for theirs: the zero-config run on one machine.
const DefaultAuthDir = ".data/nats-auth"

// Flags are a process's NATS credentials and TLS files. Embed them in a kong config with
// `embed:""` and pass Vars to the parser.
type Flags struct {
	User         string `name:"nats-user" default:"${nats_role}" help:"NATS user (default ${nats_role}, this process's role)."`
	PasswordFile string `name:"nats-password-file" type:"path" placeholder:"FILE" help:"File holding the NATS user's password (mode 0600). Default: the environment's ${nats_password_env}, else <nats-auth-dir>/<user>.password."`
	AuthDir      string `name:"nats-auth-dir" default:"${nats_auth_dir}" type:"path" placeholder:"DIR" help:"Directory of per-user password files (<user>.password): written by the process that embeds NATS, read by the others (empty: none)."`
	Creds        string `name:"nats-creds" type:"path" placeholder:"FILE" help:"NATS credentials file (user JWT and nkey seed) for a server in operator mode, instead of a user and password."`
	CA           string `name:"nats-ca" type:"path" placeholder:"FILE" help:"CA certificate(s) that sign the NATS server's certificate (TLS to NATS)."`
	Cert         string `name:"nats-cert" type:"path" placeholder:"FILE" help:"Client certificate for NATS (with --nats-key), when the server asks for one."`
	Key          string `name:"nats-key" type:"path" placeholder:"FILE" help:"Private key of --nats-cert."`
}

// Vars returns the kong variables of the flags' defaults for a process of role whose
// environment variables start with envPrefix (TICKWIRE, TICKWIRE_FEED).
func Vars(role bus.Role, envPrefix string) kong.Vars {
	return kong.Vars{
		"nats_role":         string(role),
		"nats_auth_dir":     DefaultAuthDir,
		"nats_password_env": PasswordEnv(envPrefix),
	}
}

// PasswordEnv is the environment variable holding the NATS password of a process whose
// variables start with envPrefix. It is read by Auth, never a flag (a flag shows in ps).
func PasswordEnv(envPrefix string) string { return envPrefix + "_NATS_PASSWORD" }

// Auth resolves the flags into how to connect, in this order: a credentials file; a password
// file; the password in the environment variable PasswordEnv(envPrefix); the user's file in
// the auth directory, read at every connection attempt (so a process may start before the one
// that embeds NATS has written it); else anonymous, which Tickwire's servers refuse.
func (f *Flags) Auth(envPrefix string) (bus.Auth, error) {
	a := bus.Auth{CAFile: f.CA, CertFile: f.Cert, KeyFile: f.Key}
	if (f.Cert == "") != (f.Key == "") {
		return bus.Auth{}, fmt.Errorf("--nats-cert and --nats-key go together")
	}
	envPw := os.Getenv(PasswordEnv(envPrefix))
	switch {
	case f.Creds != "":
		if f.PasswordFile != "" || envPw != "" {
			return bus.Auth{}, fmt.Errorf("--nats-creds excludes a password (--nats-password-file, %s)", PasswordEnv(envPrefix))
		}
		// The user's JWT carries its permissions; replies still come on the role's inbox
		// (_INBOX_<user>), which those permissions must allow, as in the table.
		a.CredsFile, a.InboxPrefix = f.Creds, bus.InboxPrefix(f.User)
	case f.User == "":
		if f.PasswordFile != "" || envPw != "" {
			return bus.Auth{}, fmt.Errorf("a NATS password needs --nats-user")
		}
	case f.PasswordFile != "":
		if _, err := bus.ReadPasswordFile(f.PasswordFile); err != nil {
			return bus.Auth{}, fmt.Errorf("--nats-password-file: %w", err)
		}
		a.User, a.PasswordFile = f.User, f.PasswordFile
	case envPw != "":
		a.User, a.Password = f.User, envPw
	case f.AuthDir != "":
		a.User, a.PasswordFile = f.User, bus.PasswordFile(f.AuthDir, f.User)
	default:
		a.User = f.User
	}
	return a, nil
}

// ServerTLS are the TLS files of an embedded NATS server (--embed-nats).
type ServerTLS struct {
	Cert     string `name:"nats-tls-cert" type:"path" placeholder:"FILE" help:"With --embed-nats: NATS accepts TLS connections only, with this certificate (clients, this process too, then need --nats-ca)."`
	Key      string `name:"nats-tls-key" type:"path" placeholder:"FILE" help:"With --embed-nats: the private key of --nats-tls-cert."`
	ClientCA string `name:"nats-tls-client-ca" type:"path" placeholder:"FILE" help:"With --embed-nats: also require client certificates signed by this CA (clients, this process too, then need --nats-cert and --nats-key)."`
}

// Validate checks the server files against the client flags f of the embedding process, which
// connects to its own server.
func (s *ServerTLS) Validate(f *Flags) error {
	switch {
	case s.Cert == "" && s.Key == "" && s.ClientCA == "":
		return nil
	case s.Cert == "" || s.Key == "":
		return fmt.Errorf("--nats-tls-cert and --nats-tls-key go together")
	case f.CA == "":
		return fmt.Errorf("--nats-tls-cert needs --nats-ca (the CA of that certificate: this process connects to its own server)")
	case s.ClientCA != "" && f.Cert == "":
		return fmt.Errorf("--nats-tls-client-ca needs --nats-cert and --nats-key (this process connects to its own server)")
	}
	return nil
}

// Embedded returns how the process that runs the server connects to it as user: the server's
// password for user (from the server), and the TLS files of f.
func (f *Flags) Embedded(a bus.Auth) bus.Auth {
	a.CAFile, a.CertFile, a.KeyFile = f.CA, f.Cert, f.Key
	return a
}
