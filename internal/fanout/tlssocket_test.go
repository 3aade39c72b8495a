package fanout

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"testing"
	"time"
)

// tlsPair returns the two ends of a TLS connection over loopback TCP, handshake done.
func tlsPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err == nil {
			if err = s.(*tls.Conn).Handshake(); err != nil {
				s.Close()
				s = nil
			}
		}
		accepted <- s
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("server handshake failed")
	}
	return s, c
}

// Over TLS, a reader slower than the writer gets every byte in order (a full socket is a short
// write, never a broken record), and what was taken before Close still arrives, then EOF.
func TestTLSSocketOrderAndClose(t *testing.T) {
	server, client := tlsPair(t)
	defer client.Close()
	sock := NetSocket(server)
	if got := typeName(sock); got != "*fanout.tlsSocket" {
		t.Fatalf("NetSocket gave %s", got)
	}
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := client.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				got <- b.Bytes()
				return
			}
			time.Sleep(50 * time.Microsecond) // slower than the writer: the socket fills
		}
	}()
	chunk := make([]byte, 48<<10)
	short := 0
	for i := 0; want.Len() < 16<<20; i++ {
		for j := range chunk {
			chunk[j] = byte(i + j/7)
		}
		for off := 0; off < len(chunk); {
			n, err := sock.TryWrite(chunk[off:])
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			want.Write(chunk[off : off+n])
			off += n
			if off < len(chunk) {
				short++
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	if short == 0 {
		t.Error("the socket never reported itself full")
	}
	if err := sock.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sock.TryWrite([]byte("late")); err == nil {
		t.Error("a write after Close was taken")
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("peer read %d bytes, want %d (or the bytes differ)", len(b), want.Len())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the peer never saw the end of the stream")
	}
}
