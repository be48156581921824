package fwapply

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pgaegis/pgaegis/internal/netns"
)

// What pgaegis owns in the firewall, and nothing else.
const (
	Table = "inet pgaegis" // nftables
	Chain = "PGAEGIS-PG"   // iptables/ip6tables, filter table
)

// Snapshot is pgaegis's own part of the firewall as it stands: the table
// (nft) or the chain and the jumps into it from INPUT (iptables). Other
// tables and chains are never read into it, so a revert cannot clobber
// what fail2ban or docker changed meanwhile.
type Snapshot struct {
	Present bool   `json:"present"`
	Text    string `json:"text"` // nft list table / the chain's -A lines and INPUT's jumps
	// JumpsPresent says, per Options.Jumps, which were already in INPUT.
	JumpsPresent []bool `json:"jumps_present,omitempty"`
	// Refs are every rule of another chain that jumps into the chain, as
	// iptables-save prints them: the guard checks what they send there.
	Refs []string `json:"refs,omitempty"`
}

// Equal compares two snapshots, ignoring packet counters.
func (s *Snapshot) Equal(o *Snapshot) bool {
	return s.Present == o.Present && normalize(s.Text) == normalize(o.Text)
}

var counters = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)

func normalize(s string) string { return counters.ReplaceAllString(s, "counter") }

type backend struct {
	name  string // nft, iptables, ip6tables
	netns string
}

func (b backend) run(ctx context.Context, argv ...string) (string, error) {
	cmd := netns.Command(ctx, b.netns, argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, msg)
	}
	return out.String(), nil
}

func (b backend) tool(suffix string) string { return b.name + suffix }

// snapshot reads pgaegis's part of the firewall.
func (b backend) snapshot(ctx context.Context, jumps [][]string) (*Snapshot, error) {
	if b.name == "nft" {
		tables, err := b.run(ctx, "nft", "list", "tables")
		if err != nil {
			return nil, err
		}
		if !hasLine(tables, "table "+Table) {
			return &Snapshot{}, nil
		}
		text, err := b.run(ctx, "nft", "list", "table", "inet", "pgaegis")
		if err != nil {
			return nil, err
		}
		return &Snapshot{Present: true, Text: text}, nil
	}
	save, err := b.run(ctx, b.tool("-save"), "-t", "filter")
	if err != nil {
		return nil, err
	}
	s := &Snapshot{}
	var keep []string
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, ":"+Chain+" "):
			s.Present = true
		case strings.HasPrefix(l, "-A "+Chain+" "):
			keep = append(keep, l)
		case strings.HasPrefix(l, "-A ") && target(strings.Fields(l)) == Chain:
			s.Refs = append(s.Refs, l)
			if strings.HasPrefix(l, "-A INPUT ") {
				keep = append(keep, l)
			}
		}
	}
	s.Text = strings.Join(keep, "\n")
	for _, j := range jumps {
		_, err := b.run(ctx, append([]string{b.name, "-C", "INPUT"}, j...)...)
		s.JumpsPresent = append(s.JumpsPresent, err == nil)
	}
	return s, nil
}

func hasLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// validate checks the script with the tool's own dry run.
func (b backend) validate(ctx context.Context, file string) error {
	var err error
	if b.name == "nft" {
		_, err = b.run(ctx, "nft", "-c", "-f", file)
	} else {
		_, err = b.run(ctx, b.tool("-restore"), "--test", "--noflush", file)
	}
	if err != nil {
		return fmt.Errorf("%s does not load: %w", file, err)
	}
	return nil
}

// load loads the script, then ensures each jump is in INPUT (first, so
// it runs before any accept already there).
func (b backend) load(ctx context.Context, file string, jumps [][]string) error {
	if b.name == "nft" {
		_, err := b.run(ctx, "nft", "-f", file)
		return err
	}
	if _, err := b.run(ctx, b.tool("-restore"), "--noflush", file); err != nil {
		return err
	}
	for _, j := range jumps {
		if _, err := b.run(ctx, append([]string{b.name, "-C", "INPUT"}, j...)...); err == nil {
			continue
		}
		if _, err := b.run(ctx, append([]string{b.name, "-I", "INPUT", "1"}, j...)...); err != nil {
			return err
		}
	}
	return nil
}

// revertFiles are the files the revert needs (besides revert.sh).
const (
	savedNFT = "saved.nft"
	savedIPT = "saved.rules"
)

// revertScript is a shell script that puts the snapshot back, and the
// restore file it reads (under dir). It is idempotent: run twice, or
// by the watchdog after pgaegis, it leaves the same state.
func (b backend) revertScript(dir string, s *Snapshot, jumps [][]string) (script string, file string, data []byte) {
	pre := ""
	if b.netns != "" {
		pre = "ip netns exec " + shq(b.netns) + " "
	}
	var sh strings.Builder
	sh.WriteString("set -e\n")
	if b.name == "nft" {
		// One nft transaction: declare (so delete cannot fail), delete,
		// and recreate as it was.
		data = []byte("table " + Table + "\ndelete table " + Table + "\n")
		if s.Present {
			data = append(data, s.Text...)
		}
		file = filepath.Join(dir, savedNFT)
		fmt.Fprintf(&sh, "%snft -f %s\n", pre, shq(file))
		return sh.String(), file, data
	}
	ipt := pre + b.name
	file = filepath.Join(dir, savedIPT)
	if s.Present {
		var d strings.Builder
		d.WriteString("*filter\n:" + Chain + " - [0:0]\n")
		for _, l := range strings.Split(s.Text, "\n") {
			if strings.HasPrefix(l, "-A "+Chain+" ") {
				d.WriteString(l + "\n")
			}
		}
		d.WriteString("COMMIT\n")
		data = []byte(d.String())
		// --noflush with a ':chain' line flushes that chain only.
		fmt.Fprintf(&sh, "%s-restore --noflush %s\n", ipt, shq(file))
	}
	for i, j := range jumps {
		if i < len(s.JumpsPresent) && s.JumpsPresent[i] {
			continue
		}
		args := shqAll(j)
		fmt.Fprintf(&sh, "while %s -C INPUT %s 2>/dev/null; do %s -D INPUT %s; done\n", ipt, args, ipt, args)
	}
	if !s.Present {
		fmt.Fprintf(&sh, "if %s -S %s >/dev/null 2>&1; then %s -F %s; %s -X %s; fi\n", ipt, Chain, ipt, Chain, ipt, Chain)
	}
	return sh.String(), file, data
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shqAll(a []string) string {
	q := make([]string, len(a))
	for i, s := range a {
		q[i] = shq(s)
	}
	return strings.Join(q, " ")
}

func lookTools(name string) error {
	tools := []string{"nft"}
	if name != "nft" {
		tools = []string{name, name + "-save", name + "-restore"}
	}
	tools = append(tools, "sh", "flock", "sleep")
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("no %s command: %w", t, err)
		}
	}
	return nil
}
