package agekeys

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"golang.org/x/crypto/ssh"
)

// FuzzParseRecipients: any recipients file parses or fails with an error
// naming the file, without a panic and without quoting a long token of
// the input (it might be a key pasted in the wrong file).
func FuzzParseRecipients(f *testing.F) {
	x, _ := age.GenerateX25519Identity()
	pk, _, _ := ed25519.GenerateKey(nil)
	spk, _ := ssh.NewPublicKey(pk)
	sshLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk)))
	for _, s := range []string{
		"", "\n", "# c\n" + x.Recipient().String() + "\n",
		x.String() + "\n",
		sshLine + " me@host\n",
		"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n",
		plugin.EncodeRecipient("yubikey", []byte("abc")) + "\n",
		"age1pq1qqqq\n", "age1tag1qq\n", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n",
		"\xff\r\n" + x.Recipient().String() + "\r\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		p := filepath.Join(dir, "recipients")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		rs, err := ParseRecipientsFile(p)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, p) {
				t.Fatalf("error does not start with the file name: %v", err)
			}
			for _, tok := range strings.Fields(content) {
				if len(tok) >= 16 && !strings.Contains(p, tok) && strings.Contains(msg, tok) {
					t.Fatalf("error quotes the input token %q: %v", tok, err)
				}
			}
			return
		}
		if len(rs) == 0 {
			t.Fatal("no recipients and no error")
		}
		for _, r := range rs {
			if r.Recipient == nil || r.Public == "" || r.Kind == "" {
				t.Fatalf("incomplete recipient %+v", r)
			}
		}
	})
}
