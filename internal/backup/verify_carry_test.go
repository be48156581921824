package backup

import (
	"testing"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// A plain verify after a restore test keeps the test (same files, same
// key) with the time it ran, and so does a rekey followed by a verify with
// the new key: BKP-06's evidence is not wiped by routine verifies.
// ORACLE: the restore test restores into a real throwaway server.
func TestVerifyKeepsRestoreTest(t *testing.T) {
	e := newEnv(t)
	setupApp(t, e, "app")
	e.out = t.TempDir()
	ctx := pgtest.Ctx(t)
	res, err := Backup(ctx, e.options("app"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := agekeys.ParseIdentitiesFile(e.identity)
	if err != nil {
		t.Fatal(err)
	}
	first, err := Verify(ctx, res.Dir, VerifyOptions{Identities: ids, RestoreTest: true})
	if err != nil || first.RestoreTest == nil || first.RestoreTest.At.IsZero() {
		t.Fatalf("verify --restore-test: %v %+v", err, first)
	}
	again, err := Verify(ctx, res.Dir, VerifyOptions{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	if again.RestoreTest == nil || !again.RestoreTest.At.Equal(first.RestoreTest.At) {
		t.Fatalf("plain verify's restore test %+v, want the earlier one (at %v)", again.RestoreTest, first.RestoreTest.At)
	}

	id2, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rekey(ctx, res.Dir, ids, []agekeys.Recipient{{Recipient: id2.Recipient(), Public: id2.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	after, err := Verify(ctx, res.Dir, VerifyOptions{Identities: []age.Identity{id2}})
	if err != nil {
		t.Fatal(err)
	}
	if after.RestoreTest == nil || !after.RestoreTest.At.Equal(first.RestoreTest.At) {
		t.Fatalf("verify after rekey: restore test %+v, want the earlier one", after.RestoreTest)
	}
	// The record on disk says the same, and the set is verified.
	sets, err := backupset.List(e.out)
	if err != nil || len(sets) != 1 || !sets[0].Verified() || sets[0].Verification.RestoreTest == nil {
		t.Fatalf("listing after: %v %+v", err, sets)
	}
}
