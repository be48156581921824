package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
)

// StartClones starts n servers for one test from a single initdb: the
// template cluster is initialised once (o's Conf, HBA and Init apply to
// it), stopped, and its directory copied n times; each copy starts on its
// own port, all at once. initdb is most of a server's start (about 4 s
// here, a copy 0.4 s), so twenty servers cost one initdb and twenty
// starts. The copies share the template's admin password and any
// certificate Init wrote. All are stopped when tb ends.
func StartClones(tb testing.TB, n int, o localpg.Options) []*localpg.Server {
	tb.Helper()
	if o.Version == "" {
		o.Version = Version
	}
	bin, err := FindBinDir(o.Version)
	if err != nil {
		Unavailable(tb, err)
	}
	if o.BinDir == "" {
		o.BinDir = bin
	}
	// Not t.TempDir: its directories are 0700, and the servers' OS user
	// (when we are root) must reach its data directory.
	top, err := os.MkdirTemp("", "pgaegis-clones-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmpl := filepath.Join(top, "template")
	o.Dir = tmpl
	first, err := localpg.Start(ctx, o)
	if err != nil {
		tb.Fatalf("starting the template server: %v", err)
	}
	first.Stop() // a persistent directory stays, with its admin secret
	servers := make([]*localpg.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dir := filepath.Join(top, fmt.Sprintf("s%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			// cp -a keeps the owner and modes the server insists on.
			if out, err := exec.CommandContext(ctx, "cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("copying the template cluster: %v: %s", err, out)
				return
			}
			servers[i], errs[i] = localpg.Start(ctx, localpg.Options{Version: o.Version, BinDir: o.BinDir, AdminUser: o.AdminUser, Listen: o.Listen, Dir: dir})
		}()
	}
	wg.Wait()
	for i, s := range servers {
		if s != nil {
			tb.Cleanup(s.Stop)
		}
		if errs[i] != nil {
			tb.Fatalf("starting clone %d: %v", i, errs[i])
		}
	}
	return servers
}
