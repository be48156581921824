package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// generateLight writes the low-interest shape in the three formats: mostly
// plain statements and durations, few connections, a handful of failed
// logins and one password change. It stands for a quiet server's log,
// where the fast path rejects nearly every line.
func generateLight(dir string, size int64) (*meta, error) {
	start := time.Now()
	m := &meta{Shape: "light", Sizes: map[string]int64{}}
	for f, name := range realFiles {
		path := filepath.Join(dir, name)
		if err := writeLight(path, f, size); err != nil {
			return nil, err
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		m.Sizes[f] = st.Size()
	}
	m.Seconds = time.Since(start).Seconds()
	return m, nil
}

func writeLight(path, f string, size int64) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	rng := rand.New(rand.NewSource(1))
	t := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	users := []string{"app", "app_ro", "report", "etl", "postgres"}
	hosts := []string{"10.1.2.3", "10.1.2.4", "10.1.7.9", "10.2.0.15"}
	stmts := []string{
		"SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > now() - interval '1 day' ORDER BY o.id LIMIT 100",
		"INSERT INTO events (kind, payload, created_at) VALUES ('click', '{\"page\": \"/cart\", \"ms\": 132}', now())",
		"UPDATE accounts SET balance = balance - 10.00, updated_at = now() WHERE id = 48213",
		"SELECT count(*) FROM sessions WHERE expires_at > now()",
		"BEGIN", "COMMIT",
		"SELECT id, email, last_login FROM users WHERE tenant_id = 42 AND active ORDER BY last_login DESC LIMIT 50",
	}
	var written int64
	pid := 10000
	for written < size {
		t = t.Add(time.Duration(rng.Intn(40)) * time.Millisecond)
		pid++
		u, h, db := users[rng.Intn(len(users))], hosts[rng.Intn(len(hosts))], "shop"
		var msgs [][2]string // severity, message
		switch r := rng.Intn(1000); {
		case r < 5:
			msgs = [][2]string{{"FATAL", fmt.Sprintf(`password authentication failed for user "%s"`, u)}}
			h = "203.0.113.77"
		case r < 7:
			msgs = [][2]string{{"FATAL", fmt.Sprintf(`no pg_hba.conf entry for host "198.51.100.%d", user "admin", database "postgres", no encryption`, rng.Intn(255))}}
		case r < 8:
			msgs = [][2]string{{"LOG", "AUDIT: SESSION,1,1,ROLE,ALTER ROLE,,,ALTER ROLE app PASSWORD 'Winter2026!',<not logged>"}}
		case r < 60:
			msgs = [][2]string{{"LOG", fmt.Sprintf("connection received: host=%s port=%d", h, 40000+rng.Intn(20000))},
				{"LOG", fmt.Sprintf("connection authorized: user=%s database=%s application_name=psql", u, db)}}
		case r < 100:
			msgs = [][2]string{{"LOG", fmt.Sprintf("disconnection: session time: 0:00:0%d.%03d user=%s database=%s host=%s port=%d", rng.Intn(9), rng.Intn(999), u, db, h, 40000+rng.Intn(20000))}}
		case r < 110:
			msgs = [][2]string{{"ERROR", `duplicate key value violates unique constraint "orders_pkey"`}, {"DETAIL", "Key (id)=(4711) already exists."}}
		case r < 600:
			msgs = [][2]string{{"LOG", "statement: " + stmts[rng.Intn(len(stmts))]}}
		default:
			msgs = [][2]string{{"LOG", fmt.Sprintf("duration: %d.%03d ms  statement: %s", rng.Intn(90), rng.Intn(999), stmts[rng.Intn(len(stmts))])}}
		}
		for _, m := range msgs {
			var line string
			ts := t.Format("2006-01-02 15:04:05.000 MST")
			switch f {
			case "stderr":
				line = fmt.Sprintf("%s [%d] %s@%s from %s %s:  %s\n", ts, pid, u, db, h, m[0], m[1])
			case "csvlog":
				line = fmt.Sprintf("%s,\"%s\",\"%s\",%d,\"%s:%d\",6570a1b2.%x,%d,\"idle\",%s,3/%d,0,%s,00000,\"%s\",,,,,,,,,\"psql\",\"client backend\",,0\n",
					ts, u, db, pid, h, 40000+pid%20000, pid, 1, ts, pid, m[0], strings.ReplaceAll(m[1], `"`, `""`))
			case "jsonlog":
				b, _ := json.Marshal(map[string]any{"timestamp": ts, "user": u, "dbname": db, "pid": pid, "remote_host": h, "remote_port": 40000 + pid%20000,
					"session_id": fmt.Sprintf("6570a1b2.%x", pid), "line_num": 1, "ps": "idle", "session_start": ts, "vxid": fmt.Sprintf("3/%d", pid),
					"txid": 0, "error_severity": m[0], "message": m[1], "application_name": "psql", "backend_type": "client backend", "query_id": 0})
				line = string(b) + "\n"
			}
			n, err := w.WriteString(line)
			if err != nil {
				fh.Close()
				return err
			}
			written += int64(n)
		}
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
