package bustest

import (
	"path/filepath"
	"testing"

	"github.com/tickwire/tickwire/internal/certreload/certtest"
)

// PKI writes a CA, a server certificate for 127.0.0.1 and a client certificate, both signed
// by the CA, into dir, and returns their file names.
func PKI(t testing.TB, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	c := certtest.NewCA(t, dir)
	srvCert, srvKey = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	cliCert, cliKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	c.Issue(srvCert, srvKey, 2)
	c.IssueClient(cliCert, cliKey, 3)
	return c.File, srvCert, srvKey, cliCert, cliKey
}
