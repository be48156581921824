package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/pgclient"
)

// While internal/pgclient is still its contract's stub, the tests run the
// flow with this minimal stand-in: the 15 client programs, and the
// password through PGPASSWORD (test servers only). Once pgclient.Find
// works, the real one is used and this does nothing.
var standIn bool

func init() {
	if _, err := pgclient.Find("pg_dump", 15); err == nil || !strings.Contains(err.Error(), "not implemented") {
		return
	}
	standIn = true
	findTool = func(name string, major int) (pgclient.Tool, error) {
		p := filepath.Join(pg15bin, name)
		out, err := exec.Command(p, "--version").Output()
		if err != nil {
			return pgclient.Tool{}, fmt.Errorf("stand-in: %s: %v", p, err)
		}
		f := strings.Fields(string(out))
		v := f[len(f)-1]
		mj, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if mj < major {
			return pgclient.Tool{}, fmt.Errorf("stand-in: %s is %s, older than the server's %d", p, v, major)
		}
		return pgclient.Tool{Path: p, Version: v, Major: mj}, nil
	}
	command = func(ctx context.Context, t pgclient.Target, tool pgclient.Tool, database string, args ...string) (*exec.Cmd, func(), error) {
		c := t.Config
		if database == "" {
			database = c.Database
		}
		a := []string{"-h", c.Host, "-p", strconv.Itoa(int(c.Port)), "-U", c.User}
		if filepath.Base(tool.Path) == "pg_dumpall" {
			a = append(a, "-l", database)
		} else {
			a = append(a, "-d", database)
		}
		cmd := exec.CommandContext(ctx, tool.Path, append(a, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+c.Password)
		return cmd, func() {}, nil
	}
}
