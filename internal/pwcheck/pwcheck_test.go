package pwcheck

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"testing"
)

func md5Verifier(role, pw string) string {
	s := md5.Sum([]byte(pw + role))
	return "md5" + hex.EncodeToString(s[:])
}

func scramVerifier(pw string, iter int) string {
	salt := []byte("0123456789abcdef")
	salted, _ := pbkdf2.Key(sha256.New, pw, salt, iter, 32)
	ck := hmac.New(sha256.New, salted)
	ck.Write([]byte("Client Key"))
	stored := sha256.Sum256(ck.Sum(nil))
	sk := hmac.New(sha256.New, salted)
	sk.Write([]byte("Server Key"))
	b := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + itoa(iter) + ":" + b(salt) + "$" + b(stored[:]) + ":" + b(sk.Sum(nil))
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestWeak(t *testing.T) {
	cases := []struct {
		role, stored, want string
	}{
		{"app", md5Verifier("app", "app"), RoleName},
		{"app", md5Verifier("app", "app123"), RoleName},
		{"app", md5Verifier("app", "changeme"), Common},
		{"app", md5Verifier("app", "x7#Lq!vR2"), ""},
		{"bob", scramVerifier("bob", 64), RoleName},
		{"bob", scramVerifier("postgres", 64), Common},
		{"bob", scramVerifier("long and unguessable", 64), ""},
		{"carol", "carol", RoleName},
		{"carol", "secret", Common},
	}
	for _, c := range cases {
		got, complete := Weak(c.role, c.stored, 1<<30)
		if got != c.want || !complete {
			t.Errorf("Weak(%s, %.20s…) = %q %v, want %q", c.role, c.stored, got, complete, c.want)
		}
	}
	if _, complete := Weak("bob", scramVerifier("zzz", 4096), 4096*3); complete {
		t.Error("budget should stop the search")
	}
}

func BenchmarkSCRAMGuess(b *testing.B) {
	v, _ := Parse(scramVerifier("x", 4096))
	for i := 0; i < b.N; i++ {
		v.Matches("r", "guess")
	}
}
