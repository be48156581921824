package backup

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
)

// TestVerifyRekeyMAC: verify writes a record List counts as verified; rekey
// keeps it so, the old identity no longer opens the set and the new one
// does; an edited manifest is a MAC mismatch and never verified.
func TestVerifyRekeyMAC(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	id2, _ := age.GenerateX25519Identity()
	var key [32]byte
	rand.Read(key[:])
	root := t.TempDir()
	dir := filepath.Join(root, "s-1")
	os.Mkdir(dir, 0o700)
	g := proveSeal(t, dir, backupset.GlobalsName, []byte("x\n"+dumpallEnd), id.Recipient(), key)
	m := &backupset.Manifest{Format: backupset.Format, Name: "s-1", Globals: &g, Databases: []backupset.Database{}}
	m.Sign(key)
	if err := backupset.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := Verify(ctx, dir, VerifyOptions{Identities: []age.Identity{id}})
	if err != nil || !v.OK {
		t.Fatalf("verify: %v %+v", err, v)
	}
	sets, _ := backupset.List(root)
	if !sets[0].Verified() {
		t.Fatalf("not verified: %+v", sets[0])
	}
	if _, err := Rekey(ctx, dir, []age.Identity{id}, []agekeys.Recipient{{Recipient: id2.Recipient(), Public: id2.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	sets, _ = backupset.List(root)
	if !sets[0].Verified() {
		t.Fatalf("not verified after rekey: %+v", sets[0])
	}
	if _, err := Verify(ctx, dir, VerifyOptions{Identities: []age.Identity{id}}); err == nil {
		t.Fatal("old identity still works")
	}
	// A key file that opens nothing says nothing about the set: the
	// record of the earlier, passing verification stays.
	if sets, _ = backupset.List(root); !sets[0].Verified() {
		t.Fatal("a verify with the wrong identity un-verified a good set")
	}
	// Edited after verification: un-verified without any key (list, prune, audit).
	if m3, _ := backupset.ReadManifest(dir); m3 != nil {
		keep := *m3
		m3.Databases = nil
		backupset.WriteManifest(dir, m3)
		if sets, _ = backupset.List(root); sets[0].Verified() {
			t.Fatal("a manifest edited after verification still lists as verified")
		}
		backupset.WriteManifest(dir, &keep)
	}
	if _, err := Verify(ctx, dir, VerifyOptions{Identities: []age.Identity{id2}}); err != nil {
		t.Fatal(err)
	}
	// A manifest edited by hand (re-encoded validly, so only the MAC can tell).
	m2, _ := backupset.ReadManifest(dir)
	if m2 != nil {
		m2.Name = "evil"
		backupset.WriteManifest(dir, m2)
	}
	_, err = Verify(ctx, dir, VerifyOptions{Identities: []age.Identity{id2}})
	if f, ok := err.(*Fault); !ok || !strings.Contains(f.Problem, "MAC mismatch") {
		t.Fatalf("edited manifest: %v", err)
	}
	sets, _ = backupset.List(root)
	if sets[0].Verified() {
		t.Fatal("edited set verified")
	}
	d, err := Prune(root, PruneOptions{Keep: backupset.Keep{Last: 1}, DryRun: true})
	if err != nil || len(d) != 1 {
		t.Fatalf("prune: %v %+v", err, d)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("dry run removed the set: %v", err)
	}
}
