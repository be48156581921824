package agekeys

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/plugin"
)

// The test binary doubles as a real age plugin, age-plugin-pgaegistest,
// speaking age's plugin protocol through filippo.io/age/plugin: recipient
// data is an age1 X25519 key, identity data an AGE-SECRET-KEY; identity
// data "ask" makes it request a PIN, as a hardware token plugin would.
const pluginName = "pgaegistest"

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "age-plugin-"+pluginName {
		os.Exit(runPlugin())
	}
	os.Exit(m.Run())
}

type askIdentity struct{ p *plugin.Plugin }

func (a askIdentity) Unwrap([]*age.Stanza) ([]byte, error) {
	if _, err := a.p.RequestValue("PIN for the token", true); err != nil {
		return nil, errors.New("no PIN given")
	}
	return nil, errors.New("unexpected PIN")
}

func runPlugin() int {
	p, err := plugin.New(pluginName)
	if err != nil {
		return 1
	}
	fs := flag.NewFlagSet(os.Args[0], flag.ContinueOnError)
	p.RegisterFlags(fs)
	p.HandleRecipient(func(data []byte) (age.Recipient, error) {
		return age.ParseX25519Recipient(string(data))
	})
	p.HandleIdentity(func(data []byte) (age.Identity, error) {
		if string(data) == "ask" {
			return askIdentity{p}, nil
		}
		return age.ParseX25519Identity(string(data))
	})
	return p.Main()
}

func installPlugin(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "age-plugin-"+pluginName)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// ORACLE: age's own plugin client (filippo.io/age/plugin) runs a real
// plugin binary over the plugin protocol for our parsed recipient and
// identity.
func TestPluginRoundTrip(t *testing.T) {
	installPlugin(t)
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rline := plugin.EncodeRecipient(pluginName, []byte(x.Recipient().String()))
	iline := plugin.EncodeIdentity(pluginName, []byte(x.String()))
	dir := t.TempDir()
	rs, err := ParseRecipientsFile(writeFile(t, dir, "r", rline+"\n", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Kind != "plugin:"+pluginName || rs[0].Public != rline {
		t.Fatalf("parsed %+v", rs[0])
	}
	ids, err := ParseIdentitiesFile(writeFile(t, dir, "i", "# plugin\n"+iline+"\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, rs, ids)

	// A plugin that wants a PIN gets no answer and the decryption fails
	// instead of waiting for a person.
	ask := plugin.EncodeIdentity(pluginName, []byte("ask"))
	aids, err := ParseIdentitiesFile(writeFile(t, dir, "ask", ask+"\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, rs[0].Recipient)
	io.WriteString(w, "x")
	w.Close()
	if _, err := age.Decrypt(&buf, aids...); err == nil || !strings.Contains(err.Error(), "runs unattended") {
		t.Fatalf("decrypting with a PIN-asking plugin: %v", err)
	} else {
		t.Logf("PIN-asking plugin: %v", err)
	}
}

func TestPluginMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	line := plugin.EncodeRecipient("pgaegisnosuch", []byte("data"))
	rs, err := ParseRecipientsFile(writeFile(t, t.TempDir(), "r", line+"\n", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	_, err = age.Encrypt(io.Discard, rs[0].Recipient)
	if err == nil || !strings.Contains(err.Error(), "age-plugin-pgaegisnosuch") {
		t.Fatalf("encrypting to a missing plugin: %v", err)
	}
}
