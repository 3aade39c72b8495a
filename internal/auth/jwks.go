package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// key is one verification key and the one algorithm it verifies (pinned: a key never verifies
// a token signed with another algorithm, so an RSA public key can never be used as an HMAC
// secret).
type key struct {
	alg string
	pub crypto.PublicKey // []byte for HS256
}

// jwk is the subset of RFC 7517 / RFC 7518 members we read.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// minRSABits refuses RSA keys too short to trust.
const minRSABits = 2048

// parseJWKS reads a JSON Web Key Set into keys by kid. Keys for encryption ("use": "enc") are
// skipped; a key of a type or curve we do not verify with, or whose "alg" does not fit it, is
// an error, so a typo in the key set is seen at load, not as refused tokens later. A key
// without a kid is allowed only as the set's single key.
func parseJWKS(b []byte) (map[string]key, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	keys := map[string]key{}
	for i, k := range set.Keys {
		if k.Use == "enc" {
			continue
		}
		parsed, err := k.parse()
		if err != nil {
			return nil, fmt.Errorf("auth: jwks key %d (kid %q): %w", i, k.Kid, err)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("auth: jwks: kid %q twice", k.Kid)
		}
		keys[k.Kid] = parsed
	}
	if _, ok := keys[""]; ok && len(keys) > 1 {
		return nil, errors.New("auth: jwks: a key without kid in a set of several")
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: jwks: no signature keys")
	}
	return keys, nil
}

func (k jwk) parse() (key, error) {
	want := func(alg string) error {
		if k.Alg != "" && k.Alg != alg {
			return fmt.Errorf("alg %q does not fit a %s key (want %s)", k.Alg, k.Kty, alg)
		}
		return nil
	}
	switch k.Kty {
	case "RSA":
		if err := want("RS256"); err != nil {
			return key{}, err
		}
		n, err1 := b64(k.N)
		e, err2 := b64(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return key{}, err
		}
		if len(e) == 0 || len(e) > 4 {
			return key{}, errors.New("bad RSA exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits {
			return key{}, fmt.Errorf("RSA key of %d bits, fewer than %d", pub.N.BitLen(), minRSABits)
		}
		return key{alg: "RS256", pub: pub}, nil
	case "EC":
		var curve elliptic.Curve
		var alg string
		switch k.Crv {
		case "P-256":
			curve, alg = elliptic.P256(), "ES256"
		case "P-384":
			curve, alg = elliptic.P384(), "ES384"
		default:
			return key{}, fmt.Errorf("EC curve %q not supported", k.Crv)
		}
		if err := want(alg); err != nil {
			return key{}, err
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		if err := errors.Join(err1, err2); err != nil {
			return key{}, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return key{}, errors.New("EC coordinates of the wrong length")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return key{}, err
		}
		return key{alg: alg, pub: pub}, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return key{}, fmt.Errorf("OKP curve %q not supported", k.Crv)
		}
		if err := want("EdDSA"); err != nil {
			return key{}, err
		}
		x, err := b64(k.X)
		if err != nil {
			return key{}, err
		}
		if len(x) != ed25519.PublicKeySize {
			return key{}, errors.New("Ed25519 key of the wrong length")
		}
		return key{alg: "EdDSA", pub: ed25519.PublicKey(x)}, nil
	case "oct":
		return key{}, errors.New("symmetric keys do not belong in a JWKS file; use the HS256 key file")
	}
	return key{}, fmt.Errorf("key type %q not supported", k.Kty)
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
