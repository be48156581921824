package apply

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// hbaPath is the file an HBA step rewrites (no path: the server's hba_file).
func (e *engine) hbaPath(s *plan.Step) string {
	if s.HBA == nil || s.HBA.Path == "" {
		return filepath.Clean(e.info.hbaFile)
	}
	return filepath.Clean(s.HBA.Path)
}

// hbaFiles are the files the running server reads as its hba
// configuration, cleaned: hba_file, the files pg_hba_file_rules names
// (16+: include, include_if_exists, include_dir), and the include chain
// parsed from hba_file on this host (an included file holding no rule yet
// is in no row). A plan may rewrite these and no other file.
func (e *engine) hbaFiles(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{filepath.Clean(e.info.hbaFile): true}
	if e.info.version < 160000 {
		return out, nil // no include directives before 16
	}
	rows, err := e.conn.Query(ctx, `SELECT DISTINCT file_name FROM pg_hba_file_rules WHERE file_name IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("reading pg_hba_file_rules: %w", err)
	}
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return nil, err
		}
		out[filepath.Clean(f)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if e.info.onHost {
		ho := hba.Options{Version: e.info.version / 10000, ReadFile: func(p string) ([]byte, error) {
			b, err := safefile.ReadConfig(p)
			if err == nil {
				out[filepath.Clean(p)] = true
			}
			return b, err
		}}
		hba.ParseFile(e.info.hbaFile, ho) // its errors are validate's and the guard's to judge
	}
	return out, nil
}

// candidateHBA parses the whole hba configuration as the server would
// read it after the plan: hba_file and its includes, each changed file
// with its new content, the others as they are on disk.
func (e *engine) candidateHBA(steps []*plan.Step, o hba.Options) (*hba.File, error) {
	main := filepath.Clean(e.info.hbaFile)
	over := map[string]string{}
	for _, s := range steps {
		over[e.hbaPath(s)] = s.HBA.Content
	}
	included := false
	for p := range over {
		included = included || p != main
	}
	if included {
		// Only then: a custom reader changes nothing else for the main file alone.
		o.ReadFile = func(p string) ([]byte, error) {
			if c, ok := over[filepath.Clean(p)]; ok {
				return []byte(c), nil
			}
			return safefile.ReadConfig(p)
		}
	}
	if c, ok := over[main]; ok {
		return hba.Parse(e.info.hbaFile, []byte(c), o), nil
	}
	data, err := safefile.ReadConfig(e.info.hbaFile)
	if err != nil {
		return nil, err
	}
	return hba.Parse(e.info.hbaFile, data, o), nil
}

// stepIDs names the steps for a message.
func stepIDs(steps []*plan.Step) string {
	ids := make([]string, len(steps))
	for i, s := range steps {
		ids[i] = s.ID
	}
	return strings.Join(ids, ", ")
}
