package rotate

// Small stand-ins for the parts built beside this package (pwgen,
// pgquiet, leakscan, secretsink), used only while the real one is not
// built yet: each init check below falls through to the real code once
// it lands.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/leakscan"
	"github.com/pgaegis/pgaegis/internal/pgquiet"
	"github.com/pgaegis/pgaegis/internal/pwgen"
	"github.com/pgaegis/pgaegis/internal/secretsink"
)

func notBuilt(err error) bool { return err != nil && strings.Contains(err.Error(), "not built yet") }

func init() {
	if _, err := pwgen.Generate(pwgen.Options{}); notBuilt(err) {
		generate = standInGenerate
	}
	real := generate
	// Every password a rotation makes is searched for by TestLeak.
	generate = func(o pwgen.Options) ([]byte, error) {
		pw, err := real(o)
		if err == nil {
			usedSecrets.add(string(pw))
		}
		return pw, err
	}
	if probeQuiet() {
		quiet = standInQuiet
	}
	if probeLeak() {
		takeMark = func(context.Context, *pgx.Conn) (leakscan.Mark, error) { return leakscan.Mark{Why: "stand-in"}, nil }
		scanLeaks = func(context.Context, *pgx.Conn, leakscan.Mark, []leakscan.Needle) (*leakscan.Result, error) {
			return &leakscan.Result{LogWhy: "stand-in"}, nil
		}
	}
}

// probeQuiet: the stub returns before touching its querier.
func probeQuiet() (stub bool) {
	defer func() { recover() }()
	_, err := pgquiet.Quiet(context.Background(), nil, "")
	return notBuilt(err)
}

func probeLeak() (stub bool) {
	defer func() { recover() }()
	_, err := leakscan.TakeMark(context.Background(), nil)
	return notBuilt(err)
}

func standInGenerate(o pwgen.Options) ([]byte, error) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	n := o.Length
	if n == 0 {
		n = 32
	}
	out := make([]byte, n)
	for i := range out {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		if err != nil {
			return nil, err
		}
		out[i] = alnum[k.Int64()]
	}
	return out, nil
}

func standInQuiet(ctx context.Context, q pgquiet.Querier, user string) ([]pgquiet.Warning, error) {
	for _, s := range [][2]string{{"log_statement", "'none'"}, {"log_min_duration_statement", "-1"}, {"log_min_error_statement", "'panic'"},
		{"pgaudit.log", "'none'"}, {"pg_stat_statements.track_utility", "off"}} {
		var cur *string
		if err := q.QueryRow(ctx, "SELECT current_setting($1, true)", s[0]).Scan(&cur); err != nil {
			return nil, err
		}
		if cur == nil {
			continue
		}
		if _, err := q.Exec(ctx, "SET LOCAL "+s[0]+" = "+s[1]); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

type standInFile struct{ path, format string }

func (f *standInFile) String() string { return "file " + f.path + " (0600, " + f.format + ")" }

func (f *standInFile) Deliver(ctx context.Context, s secretsink.Secret) (*secretsink.Delivery, error) {
	d := &secretsink.Delivery{Sink: f.String(), Path: f.path}
	if b, err := os.ReadFile(f.path); err == nil {
		st, _ := os.Stat(f.path)
		d.Existed, d.Previous, d.PreviousMode = true, b, uint32(st.Mode().Perm())
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var data []byte
	if f.format == "json" {
		data, _ = json.Marshal(map[string]string{"user": s.User, "password": string(s.Password)})
	} else {
		data = append(append([]byte{}, s.Password...), '\n')
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return nil, err
	}
	h := sha256.Sum256(data)
	d.Written = hex.EncodeToString(h[:])
	d.Undo = func() error {
		if !d.Existed {
			return os.Remove(f.path)
		}
		return os.WriteFile(f.path, d.Previous, fs.FileMode(d.PreviousMode))
	}
	return d, nil
}

type standInExec struct{ command string }

func (e *standInExec) String() string { return "command " + e.command }

func (e *standInExec) Deliver(ctx context.Context, s secretsink.Secret) (*secretsink.Delivery, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", e.command)
	b, _ := json.Marshal(map[string]string{"user": s.User, "password": string(s.Password)})
	cmd.Stdin = strings.NewReader(string(b))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", e.command, err, strings.TrimSpace(string(out)))
	}
	return &secretsink.Delivery{Sink: e.String()}, nil
}
