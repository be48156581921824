package collect

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"

	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// readCertificate parses the server certificate file (PEM, leaf first).
func readCertificate(path string) *snapshot.Certificate {
	c := &snapshot.Certificate{Path: path}
	data, err := safefile.ReadFile(path, safefile.ConfigMax) // ssl_cert_file can name a FIFO
	if err != nil {
		c.Error = cleanErr(err)
		return c
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		x, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			c.Error = err.Error()
			return c
		}
		certs = append(certs, x)
	}
	if len(certs) == 0 {
		c.Error = "no PEM certificate in the file"
		return c
	}
	x := certs[0]
	c.ChainLength = len(certs)
	c.Subject, c.Issuer = x.Subject.String(), x.Issuer.String()
	c.NotBefore, c.NotAfter = x.NotBefore.UTC(), x.NotAfter.UTC()
	c.SignatureAlg = x.SignatureAlgorithm.String()
	c.DNSNames = x.DNSNames
	for _, ip := range x.IPAddresses {
		c.IPs = append(c.IPs, ip.String())
	}
	c.SelfSigned = x.Subject.String() == x.Issuer.String() && x.CheckSignatureFrom(x) == nil
	switch k := x.PublicKey.(type) {
	case *rsa.PublicKey:
		c.KeyType, c.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		c.KeyType, c.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		c.KeyType, c.KeyBits = "Ed25519", 256
	default:
		c.KeyType = "unknown"
	}
	return c
}
