package firewall

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// standInFirewallCmd keeps a zone's rich rules as lines of a file: enough
// to run the firewalld script's shell logic (list, add, remove), not
// firewalld itself, which needs its daemon and is not here.
const standInFirewallCmd = `#!/bin/sh
db="$FWD_RULES"
for a in "$@"; do
	case "$a" in
	--list-rich-rules) cat "$db"; exit 0 ;;
	--add-rich-rule=*) printf '%s\n' "${a#--add-rich-rule=}" >> "$db"; exit 0 ;;
	--remove-rich-rule=*) grep -vxF -- "${a#--remove-rich-rule=}" "$db" > "$db.new"; mv "$db.new" "$db"; exit 0 ;;
	--query-service=*|--query-port=*) exit 1 ;;
	--reload) exit 0 ;;
	esac
done
exit 0
`

// The firewalld script replaces the port's allow-list: run again after
// pg_hba.conf narrowed, it leaves exactly the new sources, and a hand
// rule for another port stays.
func TestFirewalldScriptReplaces(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "firewall-cmd"), []byte(standInFirewallCmd), 0o755); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules")
	other := `rule family="ipv4" source address="203.0.113.0/24" port port="8080" protocol="tcp" accept`
	os.WriteFile(rules, []byte(other+"\n"), 0o600)
	run := func(hbaText string) []string {
		t.Helper()
		p, err := Derive(Input{Rules: parse(t, hbaText), Listen: []string{"*"}, Port: 5432})
		if err != nil {
			t.Fatal(err)
		}
		script, err := p.Render("firewalld")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "FWD_RULES=" + rules}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
		b, _ := os.ReadFile(rules)
		got := strings.Split(strings.TrimSpace(string(b)), "\n")
		sort.Strings(got)
		return got
	}
	wide := run("host all all 192.0.2.0/24 scram-sha-256\nhost all all 198.51.100.0/24 scram-sha-256\n")
	if len(wide) != 3 {
		t.Fatalf("first run: %q", wide)
	}
	narrow := run("host all all 192.0.2.0/25 scram-sha-256\n")
	want := []string{`rule family="ipv4" source address="192.0.2.0/25" port port="5432" protocol="tcp" accept`, other}
	sort.Strings(want)
	if strings.Join(narrow, "\n") != strings.Join(want, "\n") {
		t.Errorf("after narrowing:\n%s\nwant\n%s", strings.Join(narrow, "\n"), strings.Join(want, "\n"))
	}
}
