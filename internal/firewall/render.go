package firewall

import (
	"fmt"
	"strconv"
	"strings"
)

// Formats are the renderings Render knows, the default first.
var Formats = []string{"nft", "iptables", "ip6tables", "firewalld"}

// Chain is the iptables chain the restore scripts own.
const Chain = "PGAEGIS-PG"

// Render writes the policy in one of Formats ("" is nft).
func (p *Policy) Render(format string) (string, error) {
	switch format {
	case "", "nft":
		return p.nft(), nil
	case "iptables":
		return p.iptables(false), nil
	case "ip6tables":
		return p.iptables(true), nil
	case "firewalld":
		return p.firewalld(), nil
	}
	return "", fmt.Errorf("unknown firewall format %q (%s)", format, strings.Join(Formats, ", "))
}

// header says what the script touches and what it does not, and the notes.
func (p *Policy) header(w *strings.Builder, what string) {
	fmt.Fprintf(w, "# pgaegis firewall plan: %s\n", what)
	fmt.Fprintf(w, "# Only TCP port %d (PostgreSQL) is filtered. SSH and every other port are never\n", p.Port)
	fmt.Fprintf(w, "# touched: no rule here matches another port, and established connections are kept.\n")
	fmt.Fprintf(w, "# listen_addresses: %s\n", comment(strings.Join(p.Listen, ",")))
	for _, n := range p.Notes {
		fmt.Fprintf(w, "# note: %s\n", comment(n))
	}
}

// comment keeps a text on one comment line.
func comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// quoted is a text safe inside a double-quoted nft or iptables comment
// (at most 128 bytes, the kernel's limit for nft and xt_comment needs
// less than 256).
func quoted(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == '\'' || r > 0x7e {
			return '_'
		}
		return r
	}, s)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return `"` + s + `"`
}

func lines(s Source) string { return "opened by " + strings.Join(s.Lines, " ") }

func (p *Policy) nft() string {
	var w strings.Builder
	w.WriteString("#!/usr/sbin/nft -f\n")
	p.header(&w, "nftables, table inet pgaegis")
	w.WriteString("# Load: nft -f FILE (atomic; replaces only table inet pgaegis, so it can be run again).\n")
	w.WriteString("# Remove: nft delete table inet pgaegis\n")
	w.WriteString("# Other tables still vote: a packet must be accepted by every base chain on the hook.\n\n")
	// Declaring then deleting makes the delete safe when the table is new.
	w.WriteString("table inet pgaegis\ndelete table inet pgaegis\n\ntable inet pgaegis {\n")
	sets := []struct {
		name, typ string
		src       []Source
	}{{"allow4", "ipv4_addr", p.Allow4}, {"allow6", "ipv6_addr", p.Allow6},
		{"replication4", "ipv4_addr", p.Replication4}, {"replication6", "ipv6_addr", p.Replication6}}
	for _, s := range sets {
		fmt.Fprintf(&w, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", s.name, s.typ)
		if len(s.src) > 0 {
			w.WriteString("\t\telements = {\n")
			for i, src := range s.src {
				sep := ","
				if i == len(s.src)-1 {
					sep = ""
				}
				fmt.Fprintf(&w, "\t\t\t%s comment %s%s\n", src.Network, quoted(lines(src)), sep)
			}
			w.WriteString("\t\t}\n")
		}
		w.WriteString("\t}\n\n")
	}
	port := strconv.Itoa(p.Port)
	w.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	w.WriteString("\t\tct state established,related accept\n")
	w.WriteString("\t\tiif \"lo\" accept comment \"loopback is never blocked\"\n")
	fmt.Fprintf(&w, "\t\ttcp dport %s ip saddr @allow4 accept comment \"sources pg_hba.conf accepts\"\n", port)
	fmt.Fprintf(&w, "\t\ttcp dport %s ip6 saddr @allow6 accept comment \"sources pg_hba.conf accepts\"\n", port)
	fmt.Fprintf(&w, "\t\ttcp dport %s ip saddr @replication4 accept comment \"replication sources\"\n", port)
	fmt.Fprintf(&w, "\t\ttcp dport %s ip6 saddr @replication6 accept comment \"replication sources\"\n", port)
	fmt.Fprintf(&w, "\t\ttcp dport %s drop comment \"pg_hba.conf accepts nobody else\"\n", port)
	w.WriteString("\t}\n}\n")
	return w.String()
}

// Jumps are the rules (without the chain name) that send the PostgreSQL
// port from INPUT to Chain, for iptables and for ip6tables. A restore
// file cannot add them idempotently, so they are run once by hand (or by
// the apply) with -C to check first.
func (p *Policy) Jumps() (v4, v6 [][]string) {
	j := []string{"-p", "tcp", "--dport", strconv.Itoa(p.Port), "-j", Chain}
	return [][]string{j}, [][]string{append([]string(nil), j...)}
}

func (p *Policy) iptables(v6 bool) string {
	tool, allow, repl := "iptables", p.Allow4, p.Replication4
	if v6 {
		tool, allow, repl = "ip6tables", p.Allow6, p.Replication6
	}
	var w strings.Builder
	p.header(&w, tool+"-restore --noflush, chain "+Chain)
	fmt.Fprintf(&w, "# Load: %s-restore --noflush < FILE (flushes and refills only chain %s).\n", tool, Chain)
	j4, j6 := p.Jumps()
	j := j4
	if v6 {
		j = j6
	}
	for _, a := range j {
		args := strings.Join(a, " ")
		fmt.Fprintf(&w, "# Then once, to send the port through the chain:\n#   %s -C INPUT %s || %s -I INPUT %s\n", tool, args, tool, args)
	}
	fmt.Fprintf(&w, "# Remove: %s -D INPUT %s; %s -F %s; %s -X %s\n", tool, strings.Join(j[0], " "), tool, Chain, tool, Chain)
	w.WriteString("*filter\n")
	fmt.Fprintf(&w, ":%s - [0:0]\n-F %s\n", Chain, Chain)
	fmt.Fprintf(&w, "-A %s -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n", Chain)
	fmt.Fprintf(&w, "-A %s -i lo -m comment --comment \"loopback is never blocked\" -j ACCEPT\n", Chain)
	for _, s := range allow {
		fmt.Fprintf(&w, "-A %s -s %s -p tcp --dport %d -m comment --comment %s -j ACCEPT\n", Chain, s.Network, p.Port, quoted(lines(s)))
	}
	for _, s := range repl {
		fmt.Fprintf(&w, "-A %s -s %s -p tcp --dport %d -m comment --comment %s -j ACCEPT\n", Chain, s.Network, p.Port, quoted("replication: "+lines(s)))
	}
	fmt.Fprintf(&w, "-A %s -p tcp --dport %d -m comment --comment \"pg_hba.conf accepts nobody else\" -j DROP\n", Chain, p.Port)
	w.WriteString("COMMIT\n")
	return w.String()
}

func (p *Policy) firewalld() string {
	var w strings.Builder
	w.WriteString("#!/bin/sh\n")
	p.header(&w, "firewalld rich rules (permanent), zone $ZONE")
	w.WriteString("# Run as root: ZONE=public sh FILE. firewalld rejects what no rule allows, so only\n")
	w.WriteString("# accepts are added; a blanket postgresql service or port opening is removed.\n")
	w.WriteString("# Loopback is trusted by firewalld. Untested here: no firewalld daemon in the tests.\n")
	w.WriteString("set -eu\nZONE=\"${ZONE:-public}\"\n")
	port := strconv.Itoa(p.Port)
	// Replace, not add to: the port's accept rules from an earlier run (or
	// written by hand) go first, so narrowing pg_hba.conf narrows this too,
	// as the nft table and the iptables chain are replaced whole.
	w.WriteString("# This script is the port's allow-list: the zone's accept rules for the port go first.\n")
	w.WriteString("firewall-cmd --permanent --zone=\"$ZONE\" --list-rich-rules | while IFS= read -r rule; do\n")
	fmt.Fprintf(&w, "\tcase \"$rule\" in\n\t*'port port=\"%s\" protocol=\"tcp\" accept'*) firewall-cmd --permanent --zone=\"$ZONE\" --remove-rich-rule=\"$rule\" ;;\n\tesac\ndone\n", port)
	rule := func(family string, s Source, why string) {
		fmt.Fprintf(&w, "# %s\n", comment(why+lines(s)))
		fmt.Fprintf(&w, "firewall-cmd --permanent --zone=\"$ZONE\" --add-rich-rule='rule family=\"%s\" source address=\"%s\" port port=\"%s\" protocol=\"tcp\" accept'\n",
			family, s.Network, port)
	}
	for _, s := range p.Allow4 {
		rule("ipv4", s, "")
	}
	for _, s := range p.Allow6 {
		rule("ipv6", s, "")
	}
	for _, s := range p.Replication4 {
		rule("ipv4", s, "replication: ")
	}
	for _, s := range p.Replication6 {
		rule("ipv6", s, "replication: ")
	}
	w.WriteString("# The blanket openings would let everyone in past the rich rules.\n")
	w.WriteString("if firewall-cmd --permanent --zone=\"$ZONE\" --query-service=postgresql >/dev/null 2>&1; then\n")
	w.WriteString("\tfirewall-cmd --permanent --zone=\"$ZONE\" --remove-service=postgresql\nfi\n")
	fmt.Fprintf(&w, "if firewall-cmd --permanent --zone=\"$ZONE\" --query-port=%s/tcp >/dev/null 2>&1; then\n", port)
	fmt.Fprintf(&w, "\tfirewall-cmd --permanent --zone=\"$ZONE\" --remove-port=%s/tcp\nfi\n", port)
	w.WriteString("firewall-cmd --reload\n")
	return w.String()
}
