package cli

import (
	"fmt"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// pgx reports every attempt of a login on its own line; with sslmode=prefer
// it tries the same address twice (TLS, then plaintext), so a refused
// connection printed the same dial error twice.
func dedupeLines(msg string) string {
	lines := strings.Split(msg, "\n")
	seen := map[string]bool{}
	out := lines[:0]
	for _, l := range lines {
		if seen[l] && strings.TrimSpace(l) != "" {
			continue
		}
		seen[l] = true
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

var (
	authFailedRE = regexp.MustCompile(`(Peer|Ident) authentication failed for user "([^"]*)"`)
	socketRE     = regexp.MustCompile(`dial unix (\S+)/\.s\.PGSQL\.(\d+): connect: (no such file or directory|connection refused)`)
	anySocketRE  = regexp.MustCompile(`(/\S*)/\.s\.PGSQL\.\d+`)
)

// connHint says what to do about a failed connection: for peer or ident
// authentication, which OS user to run as (the owner of the server's
// socket, else the role's name) and that --pgdata audits the files
// without connecting; for missing sockets, which directories were tried.
func connHint(msg, cmdPath string, hasPgdata, hadPassword bool) string {
	if !hadPassword && strings.Contains(msg, "password authentication failed") {
		return "hint: no password was supplied (none in the connection string, PGPASSWORD, ~/.pgpass or a service file): add it to ~/.pgpass (mode 0600), or give -W to be asked for it"
	}
	if m := authFailedRE.FindStringSubmatch(msg); m != nil {
		role := m[2]
		osUser := currentUser()
		if osUser == role {
			return ""
		}
		runAs := role
		if sm := anySocketRE.FindStringSubmatch(msg); sm != nil {
			if owner := socketOwner(sm[0]); owner != "" {
				runAs = owner
			}
		}
		hint := fmt.Sprintf("hint: %s authentication accepts only the operating-system user that the pg_ident.conf map (or, without one, the name %q) allows, and you are %q: run as the cluster's user, e.g. 'sudo -u %s %s ...'",
			strings.ToLower(m[1]), role, osUser, runAs, cmdPath)
		if hasPgdata { // only commands that can work from the files alone
			hint += fmt.Sprintf(", or audit the files without connecting: '%s --pgdata DIR'", cmdPath)
		}
		return hint
	}
	if ms := socketRE.FindAllStringSubmatch(msg, -1); ms != nil && !strings.Contains(msg, "dial tcp") {
		var dirs []string
		for _, m := range ms {
			dirs = append(dirs, m[1])
		}
		return fmt.Sprintf("hint: no server listens on a Unix socket for port %s in %s: is it running (pg_lsclusters, systemctl status postgresql)? give its socket directory with -h DIR, its port with -p, or connect over TCP with -h HOST",
			ms[0][2], strings.Join(dirs, ", "))
	}
	return ""
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Geteuid())
}

// socketOwner is the OS user that owns a server socket: the cluster's user.
func socketOwner(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ""
	}
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		return u.Username
	}
	return ""
}
