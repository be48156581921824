package agekeys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

const (
	keygenBin = "/usr/bin/age-keygen"
	sshKeygen = "/usr/bin/ssh-keygen"
	ageBin    = "/usr/bin/age"
)

func writeFile(t testing.TB, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	return p
}

// ageKey runs the real age-keygen: the identities file it writes and the
// public key age-keygen -y derives from it.
func ageKey(t testing.TB) (idFile, secret, pub string) {
	t.Helper()
	if _, err := os.Stat(keygenBin); err != nil {
		t.Skip("age-keygen not installed")
	}
	idFile = filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command(keygenBin, "-o", idFile).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	b, _ := os.ReadFile(idFile)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-1") {
			secret = l
		}
	}
	out, err := exec.Command(keygenBin, "-y", idFile).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	return idFile, secret, strings.TrimSpace(string(out))
}

// sshKey makes a key pair with the real ssh-keygen, or, where it is not
// installed, an unencrypted ed25519 one with x/crypto/ssh.
func sshKey(t testing.TB, typ, passphrase string) (privFile, pubLine string) {
	t.Helper()
	dir := t.TempDir()
	privFile = filepath.Join(dir, "id_"+typ)
	if _, err := os.Stat(sshKeygen); err != nil {
		if typ != "ed25519" || passphrase != "" {
			t.Skip("ssh-keygen not installed")
		}
		pk, sk, _ := ed25519.GenerateKey(rand.Reader)
		blk, err := ssh.MarshalPrivateKey(sk, "test@pgaegis")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(privFile, pem.EncodeToMemory(blk), 0o600)
		spk, _ := ssh.NewPublicKey(pk)
		return privFile, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " test@pgaegis"
	}
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", "test@pgaegis", "-f", privFile}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command(sshKeygen, args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(privFile + ".pub")
	return privFile, strings.TrimSpace(string(pub))
}

// roundTrip proves recipients and identities belong together by sealing
// and opening a message.
func roundTrip(t *testing.T, rs []Recipient, ids []age.Identity) {
	t.Helper()
	var buf bytes.Buffer
	var ars []age.Recipient
	for _, r := range rs {
		ars = append(ars, r.Recipient)
	}
	w, err := age.Encrypt(&buf, ars...)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "secret dump")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(&buf, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "secret dump" {
		t.Fatalf("round trip gave %q", b)
	}
}

// ORACLE: keys from the real age-keygen and ssh-keygen; the public forms
// are what age-keygen -y and the .pub file say.
func TestRealKeys(t *testing.T) {
	idFile, _, pub := ageKey(t)
	edPriv, edPub := sshKey(t, "ed25519", "")
	dir := t.TempDir()

	rf := writeFile(t, dir, "recipients.txt", "# backup keys\n\n"+pub+"\r\n   "+edPub+"\n# end\n", 0o644)
	rs, err := ParseRecipientsFile(rf)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Kind != "x25519" || rs[0].Public != pub || rs[1].Kind != "ssh-ed25519" || rs[1].Public != edPub {
		t.Fatalf("parsed %+v", rs)
	}
	ids, err := ParseIdentitiesFile(idFile)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, rs[:1], ids)
	sids, err := ParseIdentitiesFile(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, rs[1:], sids)

	if _, err := os.Stat(sshKeygen); err == nil {
		rsaPriv, rsaPub := sshKey(t, "rsa", "")
		rf := writeFile(t, dir, "rsa.txt", rsaPub+"\n", 0o600)
		rs, err := ParseRecipientsFile(rf)
		if err != nil || rs[0].Kind != "ssh-rsa" || rs[0].Public != rsaPub {
			t.Fatalf("rsa: %v %+v", err, rs)
		}
		ids, err := ParseIdentitiesFile(rsaPriv)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, rs, ids)
	}
}

// ORACLE: what we seal to a parsed recipients file, the age CLI opens
// with the identity file age-keygen wrote.
func TestAgeCLIOpens(t *testing.T) {
	if _, err := os.Stat(ageBin); err != nil {
		t.Skip("age not installed")
	}
	idFile, _, pub := ageKey(t)
	dir := t.TempDir()
	rs, err := ParseRecipientsFile(writeFile(t, dir, "r", pub+"\n", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create(filepath.Join(dir, "m.age"))
	w, _ := age.Encrypt(f, rs[0].Recipient)
	io.WriteString(w, "hello")
	w.Close()
	f.Close()
	out, err := exec.Command(ageBin, "-d", "-i", idFile, filepath.Join(dir, "m.age")).Output()
	if err != nil || string(out) != "hello" {
		t.Fatalf("age -d: %v %q", err, out)
	}
}

// flipChar changes one bech32 character, so the checksum no longer holds.
func flipChar(s string, i int) string {
	c := byte('q')
	if s[i] == 'q' {
		c = 'p'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestRecipientsRefused(t *testing.T) {
	_, secret, pub := ageKey(t)
	edPriv, _ := sshKey(t, "ed25519", "")
	privPEM, _ := os.ReadFile(edPriv)
	dir := t.TempDir()
	ecdsaPub := ""
	if _, err := os.Stat(sshKeygen); err == nil {
		_, ecdsaPub = sshKey(t, "ecdsa", "")
	}
	for _, tc := range []struct {
		name, content, want, secret string
	}{
		{"empty", "", "no recipients", ""},
		{"comments", "# only\n\n   \n", "no recipients", ""},
		{"secret", pub + "\n" + secret + "\n", ":2: a private key", secret},
		{"secret-lower", "\n" + strings.ToLower(secret) + "\n", ":2: a private key", strings.ToLower(secret)},
		{"secret-after", pub + " " + secret + "\n", ":1: a private key", secret},
		{"ssh-private", string(privPEM), "private key", string(privPEM[40:80])},
		{"garbage", pub + "\nhunter2-password-xyz\n", ":2: not a recipient", "hunter2-password-xyz"},
		{"bad-x25519", flipChar(pub, 10) + "\n", ":1: malformed age X25519", ""},
		{"bad-ssh", "ssh-ed25519 AAAAnotbase64!!\n", ":1: malformed SSH public key", ""},
		{"tag", "age1tag1qqqqqqq\n", ":1: tagged", ""},
		{"utf8", "\xff\xfe\n", ":1: not valid UTF-8", ""},
		{"long", "age1" + strings.Repeat("q", 20000) + "\n", ":1: line too long", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, tc.name, tc.content, 0o644)
			_, err := ParseRecipientsFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v, want an error naming %s with %q", err, p, tc.want)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
	if ecdsaPub != "" {
		p := writeFile(t, dir, "ecdsa", pub+"\n"+ecdsaPub+"\n", 0o644)
		if _, err := ParseRecipientsFile(p); err == nil || !strings.Contains(err.Error(), ":2: SSH key type ecdsa-sha2-nistp256 cannot be") {
			t.Fatalf("ecdsa: %v", err)
		}
	}
	if _, err := ParseRecipientsFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := ParseRecipientsFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
}

func TestIdentitiesRefused(t *testing.T) {
	idFile, secret, pub := ageKey(t)
	dir := t.TempDir()
	keyText, _ := os.ReadFile(idFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660} {
		p := writeFile(t, dir, "open", string(keyText), mode)
		_, err := ParseIdentitiesFile(p)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+p) || strings.Contains(err.Error(), secret) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	if _, err := ParseIdentitiesFile(writeFile(t, dir, "ro", string(keyText), 0o400)); err != nil {
		t.Fatalf("0400: %v", err)
	}
	badSecret := secret[:len(secret)-3] + "QQQ"
	for _, tc := range []struct{ name, content, want, secret string }{
		{"empty", "", "no identities", ""},
		{"comments", "# x\n\n", "no identities", ""},
		{"public", "# k\n" + pub + "\n", ":2: a public key (recipient)", ""},
		{"ssh-public", "ssh-ed25519 AAAA x\n", ":1: a public key", ""},
		{"malformed", secret + "\n" + badSecret + "\n", ":2: malformed age secret key", badSecret},
		{"garbage", "correct horse battery staple\n", ":1: not an identity", "correct horse"},
		{"bad-plugin", "AGE-PLUGIN-NOPE\n", ":1: malformed age plugin identity", "AGE-PLUGIN-NOPE"},
		{"encrypted-age", "age-encryption.org/v1\n-> scrypt abc 18\n", "passphrase-encrypted age identity", ""},
		{"armored-age", "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n", "passphrase-encrypted age identity", ""},
		{"bad-pem", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "not a usable SSH private key", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, tc.name, tc.content, 0o600)
			_, err := ParseIdentitiesFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v, want an error naming %s with %q", err, p, tc.want)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the error quotes the line: %v", err)
			}
		})
	}
	if _, err := os.Stat(sshKeygen); err == nil {
		priv, _ := sshKey(t, "ed25519", "a passphrase")
		_, err := ParseIdentitiesFile(priv)
		if err == nil || !strings.Contains(err.Error(), "passphrase-protected") {
			t.Fatalf("passphrase-protected ssh key: %v", err)
		}
	}
	// Two age keys in one file: both are identities.
	_, secret2, pub2 := ageKey(t)
	p := writeFile(t, dir, "two", "# a\n"+secret+"\n# b\n"+secret2+"\n", 0o600)
	ids, err := ParseIdentitiesFile(p)
	if err != nil || len(ids) != 2 {
		t.Fatalf("two keys: %v %d", err, len(ids))
	}
	rs, err := ParseRecipientsFile(writeFile(t, dir, "r2", pub2+"\n", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, rs, ids)
}
