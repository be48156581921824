package collect

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hostcheck"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// The host checks start before the live settings are read, so they ran
// with no log directory and judged a jail's logpath "unknown": AUTH-20
// passed a jail on log/ after log_directory moved to log2. Reusing the
// early checks must judge the jail again against the live directory.
func TestEarlyHostChecksJudgeFail2banAgain(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "etc/fail2ban/jail.d/pgaegis-postgresql.local")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("[pgaegis-postgresql]\nenabled = true\nlogpath = /srv/pg/log/postgresql-*.log\n"), 0o644)
	early := hostcheck.Options{DataDir: "/srv/pg", Major: 17, Root: root}
	h := &snapshot.Host{}
	hostcheck.Fail2ban(early, h)
	if h.Fail2banLogOK != "" {
		t.Fatalf("without a log directory: %q", h.Fail2banLogOK)
	}
	j := &hostJob{opts: early, done: make(chan struct{}), host: h}
	close(j.done)
	o := &Options{host: j}
	late := early
	late.LogDir, late.LogFilename = "/srv/pg/log2", "postgresql-%Y-%m-%d_%H%M%S.log"
	if got := o.hostChecks(late); got.Fail2banLogOK != "no" {
		t.Errorf("jail on log/, server logging to log2/: Fail2banLogOK = %q, want no", got.Fail2banLogOK)
	}
}
