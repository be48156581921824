package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/logscan"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func logsCmd(env *Env) *cobra.Command {
	return groupCmd(env, "logs", "security events in server logs (scan, watch)",
		`  pgaegis logs scan /var/log/postgresql/
  pgaegis logs scan postgresql.csv --format sarif -o events.sarif
  pgaegis logs watch /var/log/postgresql/postgresql-17-main.log`,
		logsScanCmd(env), logsWatchCmd(env))
}

// serverLogSettings connects with the command's connection options and
// asks the server about its logs.
func serverLogSettings(ctx context.Context, env *Env, c *connFlags) (collect.LogSettings, error) {
	cfg, err := c.config(env)
	if err != nil {
		return collect.LogSettings{}, err
	}
	return collect.ServerLogSettings(ctx, cfg)
}

// logsWatch follows a log and prints each event as a JSON line as it
// happens (or POSTs it to a webhook), until interrupted.
func logsWatchCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch FILE|DIR [--prefix P] [--webhook URL] [connection options]",
		Short: "follow a log and print each security event as a JSON line (or POST it) as it happens",
		Example: `  pgaegis logs watch /var/log/postgresql/postgresql-17-main.log
  pgaegis logs watch /var/lib/postgresql/17/main/log --webhook http://127.0.0.1:9000/events`,
	}
	fs := cmd.Flags()
	prefix := fs.String("prefix", "", "log_line_prefix of stderr logs ('' for none; default: the server's with a connection, else detected)")
	logFormat := fs.String("log-format", "", "stderr, csvlog or jsonlog (default: detected)")
	var conn connFlags
	conn.register(cmd)
	webhook := fs.String("webhook", "", "POST each event as JSON to this URL instead of printing it")
	poll := fs.Duration("poll", 500*time.Millisecond, "how often to look for new lines")
	completeValues(cmd, "log-format", "stderr", "csvlog", "jsonlog")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, files []string) (int, error) {
		if len(files) != 1 {
			return ExitError, usagef("give one log file or directory")
		}
		prefixGiven := fs.Changed("prefix")
		th := logscan.DefaultThresholds()
		if conn.given() {
			srv, err := serverLogSettings(ctx, env, &conn)
			if err != nil {
				return ExitError, err
			}
			if !prefixGiven {
				*prefix = srv.Prefix
			}
			th.Superusers = map[string]bool{}
			for _, s := range srv.Superusers {
				th.Superusers[s] = true
			}
		}
		// Neither the flag nor a server: detected from the file, as scan
		// does ('' is a prefix like any other when given).
		var p *logscan.Prefix
		if prefixGiven || conn.given() {
			var err error
			if p, err = logscan.CompilePrefix(*prefix); err != nil {
				return ExitError, usageError{err.Error()}
			}
		}
		an := logscan.NewAnalysis(th)
		client := &http.Client{Timeout: 5 * time.Second}
		an.OnEvent = func(e logscan.Event) {
			b, _ := json.Marshal(e)
			if *webhook == "" {
				fmt.Fprintln(env.Stdout, string(b))
				return
			}
			resp, err := client.Post(*webhook, "application/json", bytes.NewReader(b))
			if err != nil {
				// net/http puts the whole URL in its error, and webhook URLs
				// carry their token in the path or query: name the host only.
				var ue *url.Error
				if errors.As(err, &ue) {
					err = ue.Err
				}
				fmt.Fprintf(env.Stderr, "webhook: POST to %s failed: %s\n", webhookHost(*webhook), esc(err.Error()))
				return
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				fmt.Fprintf(env.Stderr, "webhook: POST to %s answered %s\n", webhookHost(*webhook), esc(resp.Status))
			}
		}
		warn := func(m string) { fmt.Fprintf(env.Stderr, "warning: %s\n", textsafe.String(m)) } // an overlong record was skipped
		return ExitOK, logscan.Watch(ctx, files[0], logscan.Options{Prefix: p, Format: logscan.Format(*logFormat), Warn: warn}, an, *poll)
	})
	return cmd
}

func logsScanCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scan FILE|DIR|- ... [--format text|json|sarif|html|markdown|junit] [--prefix '%m [%p] ']",
		Short: "find security events in server logs: brute force, spraying, unusual sources, superuser sessions",
		Example: `  pgaegis logs scan /var/log/postgresql/
  pgaegis logs scan postgresql.csv --format sarif -o events.sarif
  pgaegis logs scan postgresql.log --prefix '%m [%p] %q%u@%d ' --since '2026-01-01 00:00'
  zcat postgresql.log.1.gz | pgaegis logs scan - --format json`,
	}
	fs := cmd.Flags()
	format := fs.String("format", "text", "text, json, sarif, html, markdown or junit")
	logFormat := fs.String("log-format", "", "stderr, csvlog or jsonlog (default: detected)")
	prefix := fs.String("prefix", "", "log_line_prefix of stderr logs ('' for none; default: the server's with a connection, else detected)")
	since := fs.String("since", "", "ignore entries before this time (RFC 3339 or 'YYYY-MM-DD HH:MM')")
	until := fs.String("until", "", "ignore entries after this time")
	window := fs.Duration("window", 5*time.Minute, "window for bursts")
	brute := fs.Int("brute-force", 10, "failures from one source within the window that make a brute-force event")
	spray := fs.Int("spray", 5, "distinct roles tried from one source within the window")
	after := fs.Int("after-failures", 3, "failures before a success that make it suspicious")
	allow := fs.String("allow", "", "comma-separated networks clients may come from (others are reported)")
	supers := fs.String("superusers", "postgres", "comma-separated superuser names (sessions over TCP are reported; with a connection: the server's)")
	failOn := fs.String("fail-on", "high", "exit 1 when an event is at or above this severity")
	flood := fs.Int("flood", 500, "connections from one source within the window that make a flood")
	baseline := fs.String("baseline", "", "file of known client addresses (one per line): logins from others are reported")
	saveBaseline := fs.String("save-baseline", "", "write the addresses that logged in to this file (with --baseline's)")
	out := fs.StringP("output", "o", "", "write the report to this file instead of stdout")
	var conn connFlags
	conn.register(cmd) // optional: the server whose logs these are
	completeValues(cmd, "format", "text", "json", "sarif", "html", "markdown", "junit")
	completeValues(cmd, "log-format", "stderr", "csvlog", "jsonlog")
	completeValues(cmd, "fail-on", severityNames...)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, files []string) (int, error) {
		switch *format {
		case "text", "json", "sarif", "html", "markdown", "junit":
		default:
			return ExitError, usagef("unknown --format %q (text, json, sarif, html, markdown or junit)", *format)
		}
		if len(files) == 0 {
			return ExitError, usagef("give at least one log file, directory or -")
		}
		sev, err := rules.ParseSeverity(*failOn)
		if err != nil {
			return ExitError, usageError{err.Error()}
		}
		superusersGiven := fs.Changed("superusers")
		// An empty log_line_prefix is a real setting (lines start with the
		// severity): given as --prefix '' or by the server, it is used, not
		// replaced by a guess. Only no word on it at all means detect.
		prefixKnown := fs.Changed("prefix")
		if conn.given() {
			srv, err := serverLogSettings(ctx, env, &conn)
			if err != nil {
				return ExitError, err
			}
			if !prefixKnown {
				*prefix, prefixKnown = srv.Prefix, true
			}
			if !superusersGiven {
				*supers = strings.Join(srv.Superusers, ",")
			}
		}
		var p *logscan.Prefix
		if prefixKnown {
			if p, err = logscan.CompilePrefix(*prefix); err != nil {
				return ExitError, usageError{err.Error()}
			}
		}
		th := logscan.DefaultThresholds()
		th.Window, th.BruteForce, th.Spray, th.AfterFails, th.Flood = *window, *brute, *spray, *after, *flood
		if *baseline != "" {
			b, err := safefile.ReadFile(*baseline, safefile.ConfigMax)
			if err != nil {
				return ExitError, err
			}
			th.Known = map[string]bool{}
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					th.Known[l] = true
				}
			}
		}
		th.Superusers = map[string]bool{}
		for _, s := range strings.Split(*supers, ",") {
			if s = strings.TrimSpace(s); s != "" {
				th.Superusers[s] = true
			}
		}
		for _, a := range strings.Split(*allow, ",") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			pf, err := netip.ParsePrefix(a)
			if err != nil {
				return ExitError, usagef("--allow %q: %v", a, err)
			}
			th.Allow = append(th.Allow, pf)
		}
		o := logscan.Options{Format: logscan.Format(*logFormat), Prefix: p, Thresholds: &th}
		for _, x := range []struct {
			v   string
			dst *time.Time
		}{{*since, &o.Since}, {*until, &o.Until}} {
			if x.v == "" {
				continue
			}
			t, err := parseWhen(x.v)
			if err != nil {
				return ExitError, usageError{err.Error()}
			}
			*x.dst = t
		}
		paths, err := logscan.Inputs(files)
		if err != nil {
			return ExitError, err
		}
		var total int64
		for _, f := range paths {
			if st, err := os.Stat(f); err == nil {
				total += st.Size()
			}
		}
		if isTerminal(env.Stderr) && total > 64<<20 {
			o.Progress = func(done int64) {
				fmt.Fprintf(env.Stderr, "\r\x1b[Kscanning %d/%d MB (%d%%)", done>>20, total>>20, done*100/max(total, 1))
			}
		}
		start := time.Now()
		an, st, err := logscan.Scan(paths, o)
		clearProgress(env)
		if err != nil {
			return ExitError, err
		}
		elapsed := time.Since(start)
		events := an.Events()
		if *saveBaseline != "" {
			known := map[string]bool{}
			for k := range th.Known {
				known[k] = true
			}
			for k := range an.Seen {
				known[k] = true
			}
			var lines []string
			for k := range known {
				lines = append(lines, k)
			}
			sort.Strings(lines)
			if err := safefile.WriteFile(*saveBaseline, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				return ExitError, err
			}
		}
		worst := rules.Severity(-1)
		for _, e := range events {
			if s, err := rules.ParseSeverity(e.Severity); err == nil && s > worst {
				worst = s
			}
		}
		dst, err := openOutput(env, *out)
		if err != nil {
			return ExitError, err
		}
		env = &Env{Stdout: dst.w, Stderr: env.Stderr, secrets: env.secrets}
		switch *format {
		case "json":
			err = writeJSON(env, map[string]any{"stats": st, "events": events, "top_sources": an.Top(false, 10), "top_roles": an.Top(true, 10), "timeline": an.Timeline()})
		case "text":
			writeLogsText(env, st, an, events, elapsed)
		default:
			rep := eventsReport(st, events, sev)
			switch *format {
			case "sarif":
				err = report.WriteSARIF(env.Stdout, rep, report.SARIFOptions{})
			case "html":
				err = report.WriteHTML(env.Stdout, rep)
			case "markdown":
				err = report.WriteMarkdown(env.Stdout, rep)
			case "junit":
				err = report.WriteJUnit(env.Stdout, rep)
			}
		}
		if err != nil {
			dst.abort()
			return ExitError, err
		}
		if err := dst.commit(); err != nil {
			return ExitError, err
		}
		if worst >= sev {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

func parseWhen(s string) (time.Time, error) {
	for _, l := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read time %q (RFC 3339 or YYYY-MM-DD HH:MM)", s)
}

func writeLogsText(env *Env, st logscan.Stats, an *logscan.Analysis, events []logscan.Event, elapsed time.Duration) {
	// Every field of a log line is attacker-chosen (a failed login picks
	// its own user name): each is escaped, and the writer catches the rest.
	env = textEnv(env)
	mbs := float64(st.Bytes) / 1e6 / elapsed.Seconds()
	fmt.Fprintf(env.Stdout, "%d file(s), %s, %d MB, %d lines in %s (%.0f MB/s); %d events\n", len(st.Files), esc(string(st.Format)), st.Bytes>>20, st.Lines, elapsed.Round(time.Millisecond), mbs, len(events))
	for _, e := range events {
		who := []string{}
		if e.Source != "" {
			who = append(who, "from "+esc(e.Source))
		}
		if e.Role != "" {
			who = append(who, "role "+esc(e.Role))
		}
		if e.Database != "" {
			who = append(who, "database "+esc(e.Database))
		}
		fmt.Fprintf(env.Stdout, "\n%-8s %s: %s\n  %s; %d time(s), %s .. %s\n  at: %s\n", esc(strings.ToUpper(e.Severity)), esc(e.Kind), esc(e.Title), strings.Join(who, ", "), e.Count,
			e.First.Format("2006-01-02 15:04:05"), e.Last.Format("2006-01-02 15:04:05"), strings.Join(escAll(e.Evidence), ", "))
		if e.Sample != "" {
			fmt.Fprintf(env.Stdout, "  statement: %s\n", esc(e.Sample))
		}
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTOP SOURCES (failed logins)\tCOUNT")
	for _, c := range an.Top(false, 10) {
		fmt.Fprintf(tw, "%s\t%d\n", esc(c.Key), c.N)
	}
	fmt.Fprintln(tw, "\nTOP TARGETED ROLES\tCOUNT")
	for _, c := range an.Top(true, 10) {
		fmt.Fprintf(tw, "%s\t%d\n", esc(c.Key), c.N)
	}
	fmt.Fprintln(tw, "\nHOUR\tFAILED LOGINS")
	for _, c := range an.Timeline() {
		fmt.Fprintf(tw, "%s\t%d\n", esc(c.Key), c.N)
	}
	tw.Flush()
	for _, e := range st.Errors {
		fmt.Fprintf(env.Stdout, "unparsed: %s\n", esc(e))
	}
}

// eventsReport maps events onto the audit's report so every writer works.
func eventsReport(st logscan.Stats, events []logscan.Event, failOn rules.Severity) *report.Report {
	snap := &snapshot.Snapshot{Tool: "pgaegis", ToolVersion: collect.Version, CollectedAt: time.Now().UTC().Truncate(time.Second),
		Target: snapshot.Target{Description: "logs: " + strings.Join(st.Files, ", ")}}
	var fs []rules.Finding
	for _, e := range events {
		sev, _ := rules.ParseSeverity(e.Severity)
		loc := ""
		if len(e.Evidence) > 0 {
			loc = e.Evidence[0]
		}
		obj := strings.TrimSpace(strings.Join([]string{e.Source, e.Role}, " "))
		fs = append(fs, rules.Finding{Rule: "LOGS-" + e.Kind, Status: rules.Fail, Severity: sev, Title: e.Title, Area: rules.AreaLogging,
			Object: obj, Location: loc, Evidence: fmt.Sprintf("%d time(s) %s .. %s; %s %s", e.Count, e.First.Format(time.RFC3339), e.Last.Format(time.RFC3339), strings.Join(e.Evidence, ", "), e.Sample),
			Fix: "investigate the source and role; block or rotate credentials as needed", FixKind: rules.FixShell})
	}
	return report.Build(snap, fs, failOn)
}

// webhookHost is the part of a webhook URL that may be shown: scheme and
// host, never user info, path or query (where tokens live).
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the webhook"
	}
	return u.Scheme + "://" + u.Host
}
