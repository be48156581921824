// Command serve is the pgaegis serve benchmark's helper (bench/serve/run.sh):
//
//	go run ./bench/serve gen -store FILE [-servers 1000 -scans 100 -findings 60]
//	go run ./bench/serve measure -url URL -token-file F [-n 200] PATH...
//
// gen writes a generated history through store.PutScan (the write path
// fleet scans use; no real servers). measure requests each path n times
// one after another with the bearer token and prints p50/p99.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/store"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: serve gen|measure ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "measure":
		err = measure(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (gen or measure)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/serve:", err)
		os.Exit(1)
	}
}

var areas = []string{rules.AreaNetwork, rules.AreaTLS, rules.AreaAuth, rules.AreaRoles, rules.AreaLogging, rules.AreaFiles}

// findings is scan k of server s: some rules always fail, some fail ten
// scans out of thirty (drift), a few are not checked.
func findings(s, k, n int) []rules.Finding {
	fs := make([]rules.Finding, n)
	for i := range fs {
		st := rules.Pass
		switch {
		case (i+s)%7 == 0:
			st = rules.Fail
		case i%10 == 3 && (s+k/10+i)%3 == 0:
			st = rules.Fail
		case i%25 == 24:
			st = rules.NotChecked
		}
		fs[i] = rules.Finding{Rule: fmt.Sprintf("R-%03d", i), Status: st, Severity: rules.Severity(i % 5), Title: fmt.Sprintf("generated rule %d", i),
			Area: areas[i%len(areas)], Object: fmt.Sprintf("role r%d", i%20), Evidence: fmt.Sprintf("evidence %d on server %d", i, s),
			Fix: fmt.Sprintf("ALTER ROLE r%d NOSUPERUSER;", i%20)}
	}
	return fs
}

func gen(args []string) error {
	fl := flag.NewFlagSet("gen", flag.ExitOnError)
	path := fl.String("store", "", "SQLite file to write (must not exist)")
	servers := fl.Int("servers", 1000, "servers")
	scans := fl.Int("scans", 100, "scans per server (one a day)")
	nf := fl.Int("findings", 60, "findings per scan")
	fl.Parse(args)
	if *path == "" {
		return fmt.Errorf("gen: -store FILE")
	}
	if _, err := os.Stat(*path); err == nil {
		return fmt.Errorf("gen: %s exists", *path)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	// The newest scans end about now, so certificates and ages are current.
	base := time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(*scans) * 24 * time.Hour)
	for k := range *scans {
		for s := range *servers {
			at := base.Add(time.Duration(k)*24*time.Hour + time.Duration(s)*time.Second)
			name := fmt.Sprintf("db-%04d", s)
			in := store.NewScan{Server: name, Labels: map[string]string{"env": []string{"prod", "staging", "dev"}[s%3], "team": fmt.Sprintf("team-%d", s%10)},
				StartedAt: at, FinishedAt: at.Add(5 * time.Second), Status: store.OK, Findings: findings(s, k, *nf),
				Snapshot: &snapshot.Snapshot{ServerCert: &snapshot.Certificate{Path: "/var/lib/postgresql/server.crt", Subject: "CN=" + name,
					Issuer: "CN=Bench CA", NotBefore: base, NotAfter: base.AddDate(0, 0, 100+(s*7)%400)}}}
			if (s+k)%97 == 0 {
				in.Status, in.Message, in.Findings, in.Snapshot = store.Timeout, "timed out after 30s", nil, nil
			}
			if _, err := st.PutScan(ctx, in); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "\rgenerated %d/%d scans (%.0f scans/s)", (k+1)**servers, *scans**servers,
			float64((k+1)**servers)/time.Since(start).Seconds())
	}
	fmt.Fprintf(os.Stderr, "\ngenerated in %s\n", time.Since(start).Round(time.Second))
	return nil
}

func measure(args []string) error {
	fl := flag.NewFlagSet("measure", flag.ExitOnError)
	base := fl.String("url", "http://127.0.0.1:8642", "dashboard URL")
	tokFile := fl.String("token-file", "", "file holding the bearer token")
	n := fl.Int("n", 200, "requests per path")
	fl.Parse(args)
	tok, err := os.ReadFile(*tokFile)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 2 * time.Minute}
	fmt.Printf("%-32s %6s %10s %10s %10s %8s\n", "path", "n", "p50", "p99", "max", "bytes")
	for _, p := range fl.Args() {
		var ds []time.Duration
		size := 0
		for range *n {
			req, _ := http.NewRequest("GET", *base+p, nil)
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
			t := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s: %s", p, resp.Status)
			}
			ds = append(ds, time.Since(t))
			size = len(b)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		q := func(f float64) time.Duration {
			return ds[min(len(ds)-1, int(f*float64(len(ds))))].Round(100 * time.Microsecond)
		}
		fmt.Printf("%-32s %6d %10s %10s %10s %8d\n", p, len(ds), q(0.50), q(0.99), ds[len(ds)-1].Round(100*time.Microsecond), size)
	}
	return nil
}
