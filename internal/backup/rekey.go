package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
)

// Rekey re-encrypts every file of the set in dir to recipients, writing
// a new manifest (Recipients updated, same key, re-signed); old files are
// replaced only after every new one is committed.
//
// Each source file's ciphertext is hashed before and after its rekey and
// must match the manifest both times: sealedfile.Rekey never looks at the
// plaintext, so without this a file altered since the backup would be
// laundered into the new manifest. A verification record that was ok and
// signed stays ok with the new sha256s (the payload, key and plaintext
// are unchanged, the MAC proves it is the same set); any other record is
// removed, since it names ciphertext that no longer exists.
//
// Not crash-safe between the renames and the manifest write: a crash
// there leaves files the old manifest's sha256s do not match (Verify
// then says so; the new identity opens the renamed files).
func Rekey(ctx context.Context, dir string, identities []age.Identity, recipients []agekeys.Recipient) (*backupset.Manifest, error) {
	if len(recipients) == 0 {
		return nil, &Fault{Set: dir, Problem: "rekey: no recipients"}
	}
	m, err := backupset.ReadManifest(dir)
	if err != nil {
		return nil, &Fault{Set: dir, Problem: err.Error(), Err: err}
	}
	lock, err := backupset.Lock(dir)
	if err != nil {
		return nil, &Fault{Set: dir, Problem: "rekey refused: " + err.Error(), Err: err}
	}
	defer lock.Close()
	p := &proof{dir: dir, m: m, ids: identities, sums: map[string]string{}}
	files := m.AllFiles()
	p.unlock(files)
	if len(p.problems) > 0 || !p.keyOK {
		return nil, &Fault{Set: dir, Problem: "rekey refused: " + strings.Join(p.problems, "; ")}
	}
	old, _ := backupset.ReadVerification(dir)
	keepVerified := old != nil && old.OK && old.VerifyMAC(p.key) == nil
	rc := make([]age.Recipient, len(recipients))
	public := make([]string, len(recipients))
	for i, r := range recipients {
		rc[i], public[i] = r.Recipient, r.Public
	}
	tmp := func(name string) string { return filepath.Join(dir, ".rekey-"+name) }
	done := map[string]sealedfile.Stats{}
	cleanup := func() {
		for _, f := range files {
			os.Remove(tmp(f.Name))
		}
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			cleanup()
			return nil, &Fault{Set: dir, Problem: "rekey: " + err.Error(), Err: err}
		}
		src := filepath.Join(dir, f.Name)
		os.Remove(tmp(f.Name)) // a previous rekey that died
		if sum, err := backupset.FileSHA256(src); err != nil {
			cleanup()
			return nil, &Fault{Set: dir, Problem: fmt.Sprintf("rekey refused: reading %s: %v", f.Name, err), Err: err}
		} else if sum != f.SHA256 {
			cleanup()
			return nil, &Fault{Set: dir, Problem: fmt.Sprintf("rekey refused: %s does not match the manifest's sha256 (it changed since the backup; verify the set)", f.Name)}
		}
		st, err := sealedfile.Rekey(src, tmp(f.Name), identities, rc)
		if err != nil {
			cleanup()
			return nil, &Fault{Set: dir, Problem: "rekey: " + err.Error(), Err: err}
		}
		if sum, err := backupset.FileSHA256(src); err != nil || sum != f.SHA256 {
			cleanup()
			return nil, &Fault{Set: dir, Problem: fmt.Sprintf("rekey refused: %s changed while it was re-encrypted", f.Name)}
		}
		done[f.Name] = st
	}
	for _, f := range files {
		if err := os.Rename(tmp(f.Name), filepath.Join(dir, f.Name)); err != nil {
			return nil, &Fault{Set: dir, Problem: "rekey: " + err.Error(), Err: err}
		}
	}
	upd := func(f *backupset.File) {
		st := done[f.Name]
		f.CipherBytes, f.SHA256, f.CompressedBytes = st.CipherBytes, st.SHA256, st.CompressedBytes
	}
	if m.Globals != nil {
		upd(m.Globals)
	}
	for i := range m.Databases {
		for j := range m.Databases[i].Files {
			upd(&m.Databases[i].Files[j])
		}
	}
	m.Recipients = public
	m.Sign(p.key)
	if err := backupset.WriteManifest(dir, m); err != nil {
		return nil, &Fault{Set: dir, Problem: "rekey: writing the manifest: " + err.Error(), Err: err}
	}
	switch {
	case keepVerified:
		for n := range old.Files {
			if st, ok := done[n]; ok {
				old.Files[n] = st.SHA256
			}
		}
		old.Manifest = m.Digest()
		old.Sign(p.key)
		if err := backupset.WriteVerification(dir, old); err != nil {
			return m, &Fault{Set: dir, Problem: "rekey: writing the verification: " + err.Error(), Err: err}
		}
	case old != nil:
		os.Remove(filepath.Join(dir, backupset.VerificationName))
	}
	return m, nil
}
