package backup

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/backupset"
)

// KeptRecordNote ends a failed Verify's problem when the set's earlier
// verification record was left as it was.
const KeptRecordNote = "(the set's earlier verification record is unchanged)"

// VerifyOptions for Verify.
type VerifyOptions struct {
	Identities  []age.Identity
	RestoreTest bool   // restore into a throwaway server of the dump's major and compare rows
	BinDir      string // server binaries for the restore test; found by major when empty
	Progress    Progress
	Now         func() time.Time
}

// Verify decrypts every file of the set in dir, checks its sha256 and
// size against the manifest, the key against the manifest's MAC, each
// dump's archive for completeness and per-table rows against the
// manifest, and with RestoreTest restores it and compares count(*) per
// table. It writes verification.json (ok or not) and returns a *Fault
// when anything did not match.
//
// A failed verification is written too, so the set's record says it
// failed; it is signed with the set's key when one was found (an
// unsigned record, or one that is not ok, never counts as verified).
func Verify(ctx context.Context, dir string, o VerifyOptions) (*backupset.Verification, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	m, err := backupset.ReadManifest(dir)
	if err != nil {
		return nil, &Fault{Set: dir, Problem: err.Error(), Err: err}
	}
	// A verify writes the set's record: one at a time, and never while a
	// backup or rekey is writing the set. (A set on read-only media can
	// still be checked; writing its record fails at the end as before.)
	if lock, err := backupset.Lock(dir); err == nil {
		defer lock.Close()
	} else if errors.Is(err, backupset.ErrInUse) {
		return nil, &Fault{Set: dir, Problem: err.Error(), Err: err}
	}
	prev, _ := backupset.ReadVerification(dir)
	p := &proof{dir: dir, m: m, ids: o.Identities, sums: map[string]string{}}
	p.unlock(m.AllFiles())
	if p.keyOK && len(p.problems) == 0 {
		say(o.Progress, "%s: key verifies the manifest; reading every file", dir)
		p.content(m.Databases, true)
	}
	v := &backupset.Verification{Format: backupset.Format, Verified: now().UTC(), Files: p.sums, Manifest: m.Digest()}
	if len(p.problems) == 0 && o.RestoreTest {
		if err := ctx.Err(); err != nil {
			p.fail("restore test: %v", err)
		} else {
			say(o.Progress, "%s: restore test in a throwaway server", dir)
			rt, err := restoreTest(ctx, dir, m, o.Identities, o.BinDir)
			v.RestoreTest = rt
			if err != nil && rt == nil {
				// The test could not start (tools, throwaway server): that
				// says nothing about the set, so its record is left as it was.
				return nil, &Fault{Set: dir, Problem: "restore test could not run: " + err.Error() + " (the set's verification record is unchanged)", Err: err}
			}
			if err != nil {
				p.fail("restore test: %v", err)
			}
		}
	}
	v.OK = len(p.problems) == 0
	v.Problems = p.problems
	if v.OK && !o.RestoreTest && carriesRestoreTest(prev, v, p) {
		rt := *prev.RestoreTest
		if rt.At.IsZero() {
			rt.At = prev.Verified // a record from before At: its test ran then
		}
		v.RestoreTest = &rt
		say(o.Progress, "%s: the restore test of %s still holds (the same files and key)", dir, restoreTestTime(prev))
	}
	if p.anyKey {
		v.Sign(p.key)
	}
	// An identity that opens none of the files says nothing about the set
	// either (a wrong key file): an earlier record stays.
	keep := !p.anyKey && !v.OK
	if keep && prev != nil {
		return v, &Fault{Set: dir, Problem: strings.Join(p.problems, "; ") + " " + KeptRecordNote, Err: errors.New("backup set did not verify")}
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		if err := backupset.WriteVerification(dir, v); err != nil {
			return v, &Fault{Set: dir, Problem: "writing " + backupset.VerificationName + ": " + err.Error(), Err: err}
		}
	}
	if !v.OK {
		return v, &Fault{Set: dir, Problem: strings.Join(p.problems, "; "), Err: errors.New("backup set did not verify")}
	}
	return v, nil
}

// carriesRestoreTest: an earlier passing record of this key, naming the
// same manifest and the same ciphertext, keeps its restore test when the
// set is verified again without one (the restore proved these very files).
func carriesRestoreTest(prev, v *backupset.Verification, p *proof) bool {
	if prev == nil || !prev.OK || prev.RestoreTest == nil || len(prev.RestoreTest.Mismatches) > 0 || !p.anyKey || prev.VerifyMAC(p.key) != nil {
		return false
	}
	if prev.Manifest != v.Manifest || len(prev.Files) != len(v.Files) {
		return false
	}
	for n, sum := range v.Files {
		if prev.Files[n] != sum {
			return false
		}
	}
	return true
}

func restoreTestTime(v *backupset.Verification) string {
	at := v.RestoreTest.At
	if at.IsZero() {
		at = v.Verified
	}
	return at.UTC().Format(time.RFC3339)
}
