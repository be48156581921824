package backup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/pgarchive"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
)

// dumpallEnd is how pg_dumpall's script ends (the comment it writes last).
const dumpallEnd = "--\n-- PostgreSQL database cluster dump complete\n--\n\n"

// proof is one checking pass over a set: every problem found, and the
// sha256 of each file that passed every check.
type proof struct {
	dir      string
	m        *backupset.Manifest
	ids      []age.Identity
	key      [sealedfile.KeySize]byte
	keyOK    bool // key verified the manifest's MAC
	anyKey   bool // some file gave a key (key holds it even when the MAC failed)
	problems []string
	sums     map[string]string
}

func (p *proof) fail(format string, a ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, a...))
}

// unlock checks names and sizes and finds the set's key: among the keys
// the files carry, the one that verifies the manifest's MAC. A file
// carrying another key was not written by this backup.
func (p *proof) unlock(files []backupset.File) {
	seen := map[string]bool{}
	keys := map[[sealedfile.KeySize]byte][]string{}
	var order [][sealedfile.KeySize]byte
	for _, f := range files {
		if f.Name == "" || strings.ContainsAny(f.Name, "/\\") || strings.HasPrefix(f.Name, ".") || seen[f.Name] {
			p.fail("the manifest names an unsafe or repeated file %q", f.Name)
			continue
		}
		seen[f.Name] = true
		path := filepath.Join(p.dir, f.Name)
		fi, err := os.Lstat(path)
		switch {
		case err != nil:
			p.fail("%s is missing", f.Name)
			continue
		case !fi.Mode().IsRegular():
			p.fail("%s is not a regular file", f.Name)
			continue
		case fi.Size() != f.CipherBytes:
			p.fail("%s is %d bytes, the manifest says %d", f.Name, fi.Size(), f.CipherBytes)
		}
		k, err := sealedfile.ReadKey(path, p.ids)
		if err != nil {
			if strings.Contains(err.Error(), "no identity matched") || strings.Contains(err.Error(), "no identities") {
				p.fail("none of the given identities opens %s (it was sealed to other recipients)", f.Name)
			} else {
				p.fail("%s: %v", f.Name, err)
			}
			continue
		}
		if _, ok := keys[k]; !ok {
			order = append(order, k)
		}
		keys[k] = append(keys[k], f.Name)
	}
	for _, k := range order {
		if !p.anyKey {
			p.key, p.anyKey = k, true
		}
		if p.m.VerifyMAC(k) == nil {
			p.key, p.keyOK = k, true
			break
		}
	}
	if p.anyKey && !p.keyOK {
		p.fail("%s was changed after the backup (MAC mismatch)", backupset.ManifestName)
		return
	}
	for _, k := range order {
		if k != p.key {
			for _, n := range keys[k] {
				p.fail("%s carries another backup's key: it is not this set's file", n)
			}
		}
	}
}

// read streams f's plaintext into sink and compares what was read with
// the manifest; it reports whether every check passed.
func (p *proof) read(f backupset.File, sink io.Writer) bool {
	r, err := sealedfile.Open(filepath.Join(p.dir, f.Name), p.ids)
	if err != nil {
		p.fail("%s: %v", f.Name, err)
		return false
	}
	if r.Key() != p.key {
		r.Close()
		p.fail("%s carries another backup's key: it is not this set's file", f.Name)
		return false
	}
	_, cerr := io.CopyBuffer(sink, r, make([]byte, 1<<20))
	st, err := r.Close()
	if cerr != nil {
		p.fail("%s: %v", f.Name, cerr)
		return false
	}
	if err != nil {
		p.fail("%s: %v", f.Name, err)
		return false
	}
	ok := true
	if st.SHA256 != f.SHA256 {
		p.fail("%s: sha256 %s, the manifest says %s", f.Name, st.SHA256, f.SHA256)
		ok = false
	}
	if st.CipherBytes != f.CipherBytes || st.PlainBytes != f.PlainBytes {
		p.fail("%s: %d bytes (%d plain), the manifest says %d (%d plain)", f.Name, st.CipherBytes, st.PlainBytes, f.CipherBytes, f.PlainBytes)
		ok = false
	}
	if ok {
		p.sums[f.Name] = st.SHA256
	}
	return ok
}

// tailKeep keeps the last n bytes written.
type tailKeep struct {
	n   int
	buf []byte
}

func (t *tailKeep) Write(b []byte) (int, error) {
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(b), nil
}

// content checks every file of the set: globals end as pg_dumpall ends
// them, each dump is a complete archive whose entries and per-table rows
// are the manifest's.
func (p *proof) content(dbs []backupset.Database, globals bool) {
	if globals && p.m.Globals != nil {
		t := &tailKeep{n: len(dumpallEnd)}
		if p.read(*p.m.Globals, t) && !strings.HasSuffix(string(t.buf), dumpallEnd) {
			p.fail("%s does not end with pg_dumpall's completion comment: it stopped short", p.m.Globals.Name)
		}
	}
	for _, d := range dbs {
		entries := 0
		var blobs int64
		rows := map[string]int64{}
		complete := true
		for part, f := range d.Files {
			ar := pgarchive.NewReader()
			if !p.read(f, ar) {
				complete = false
				continue
			}
			sum, err := ar.Close()
			if err != nil {
				p.fail("%s: %v", f.Name, err)
				complete = false
				continue
			}
			entries += len(sum.Entries)
			blobs += sum.Blobs
			for _, t := range sum.Tables {
				rows[fmt.Sprintf("%s.%s/%d", t.Namespace, t.Name, part)] = t.Rows
			}
		}
		if !complete {
			continue
		}
		if entries != d.TOCEntries {
			p.fail("database %q: the dump has %d entries, the manifest says %d", d.Name, entries, d.TOCEntries)
		}
		if blobs != d.Blobs {
			p.fail("database %q: the dump has %d large objects, the manifest says %d", d.Name, blobs, d.Blobs)
		}
		for _, t := range d.Tables {
			k := fmt.Sprintf("%s.%s/%d", t.Schema, t.Name, t.Part)
			got, ok := rows[k]
			switch {
			case !ok:
				p.fail("database %q: table %s.%s is in the manifest but not in the dump", d.Name, t.Schema, t.Name)
			case got != t.Rows:
				p.fail("database %q: table %s.%s: the dump holds %d rows, the manifest says %d", d.Name, t.Schema, t.Name, got, t.Rows)
			}
			delete(rows, k)
		}
		for k := range rows {
			p.fail("database %q: table %s is in the dump but not in the manifest", d.Name, k)
		}
	}
}
