package rules

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"go4.org/netipx"

	"github.com/pgaegis/pgaegis/internal/firewall"
	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/hbapolicy"
	"github.com/pgaegis/pgaegis/internal/netfilter"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

const firewallFix = "pgaegis firewall plan"

func init() {
	register(&Rule{
		ID: "NET-03", Title: "A firewall limits the port to the client networks", Area: AreaNetwork, Severity: High,
		Rationale:  "pg_hba.conf decides who may log in; the firewall decides who may try. A port open to networks pg_hba.conf rejects anyway is attack surface with no purpose (pre-authentication bugs, TLS handshakes, connection floods); a firewall blocking networks pg_hba.conf accepts is breakage; no firewall at all leaves the listener to the whole network.",
		References: []Reference{{"pgaegis", "docs/firewall-audit.md"}},
		Access:     "root on the database host (nft list ruleset, iptables-save), and pg_hba.conf",
		Check:      checkFirewall,
	})
}

// piece is a block of source addresses every pg_hba.conf line and every
// firewall rule treats alike.
type piece struct {
	rng netipx.IPRange
	rep netip.Addr
}

func (p piece) label() string {
	var s []string
	for _, pf := range p.rng.Prefixes() {
		s = append(s, pf.String())
	}
	if len(s) > 3 {
		return p.rng.String()
	}
	return strings.Join(s, ", ")
}

// loopbackNets are always pieces of their own: the host itself, never
// judged (a piece beginning at 127.0.0.2 must not stand for 128.0.0.0/1).
var loopbackNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// pieces partitions the address space at the given prefixes and at
// loopback, so that a piece's first address answers for all of it.
func pieces(prefixes []netip.Prefix) []piece {
	var out []piece
	prefixes = append(append([]netip.Prefix(nil), prefixes...), loopbackNets...)
	for _, all := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
		for _, r := range firewall.Partition(all, prefixes) {
			out = append(out, piece{rng: r, rep: r.From()})
		}
	}
	return out
}

func isLoopbackAddr(a netip.Addr) bool { return a.Unmap().IsLoopback() }

// hbaAccepter is the first line that accepts some connection from addr,
// trying every role and database the file or the server names and every
// kind of connection the server can take (firewall.ConnKinds, as the plan
// does: with ssl = off hostssl lines match nothing): nil when pg_hba.conf
// rejects every connection from there. undecided says the answer hinges
// on something unknown (membership, DNS).
func hbaAccepter(rules []hba.Rule, addr netip.Addr, users, dbs []string, env hba.Env, kinds []firewall.ConnKind) (acc *hba.Rule, undecided bool) {
	for _, repl := range []bool{false, true} {
		for _, k := range kinds {
			for _, u := range users {
				for _, d := range dbs {
					res := hba.Match(rules, hba.Conn{User: u, Database: d, Addr: addr, SSL: k.SSL, GSS: k.GSS, Replication: repl}, env)
					if len(res.Depends) > 0 {
						undecided = true
						continue
					}
					if res.Matched && res.Rule.Method != "reject" && (acc == nil || res.Rule.Line < acc.Line) {
						acc = res.Rule
					}
				}
			}
		}
	}
	return acc, undecided
}

// candidates are the role and database names worth trying: those the
// file names, the server's when group lines need them, and one that
// nothing names.
func candidates(s *snapshot.Snapshot, rules []hba.Rule) (users, dbs []string) {
	seenU, seenD := map[string]bool{}, map[string]bool{}
	addU := func(n string) {
		if !seenU[n] && len(users) < 100 {
			seenU[n] = true
			users = append(users, n)
		}
	}
	addD := func(n string) {
		if !seenD[n] && len(dbs) < 100 {
			seenD[n] = true
			dbs = append(dbs, n)
		}
	}
	for _, r := range rules {
		for _, t := range r.Users {
			if !strings.HasPrefix(t.Value, "@") && !strings.HasPrefix(t.Value, "/") {
				addU(strings.TrimPrefix(t.Value, "+"))
			}
		}
		for _, t := range r.Databases {
			if !strings.HasPrefix(t.Value, "@") && !strings.HasPrefix(t.Value, "/") {
				addD(t.Value)
			}
		}
	}
	// Group lines (+name) match members: the server's roles are tried
	// too, a bounded number (pieces x roles x databases matches).
	group := false
	for _, r := range rules {
		for _, t := range r.Users {
			group = group || strings.HasPrefix(t.Value, "+")
		}
	}
	if group {
		for _, r := range s.Roles {
			if len(users) < 60 {
				addU(r.Name)
			}
		}
	}
	// sameuser / samerole lines match when the database is named like
	// the role.
	for _, u := range users {
		if len(dbs) < 60 {
			addD(u)
		}
	}
	addU("pgaegis_unnamed_role")
	addD("pgaegis_unnamed_db")
	return users, dbs
}

// ruleset reads the snapshot's firewall.
func firewallRuleset(fw *snapshot.Firewall) (*netfilter.Ruleset, error) {
	var nft, r4, r6 *netfilter.Ruleset
	var err error
	if fw.NFTJSON != "" {
		if nft, err = netfilter.ParseNFT([]byte(fw.NFTJSON)); err != nil {
			return nil, err
		}
	}
	if fw.IPTables != "" {
		if r4, err = netfilter.ParseIPTables("iptables-save", []byte(fw.IPTables), false); err != nil {
			return nil, err
		}
	}
	if fw.IP6Tables != "" {
		if r6, err = netfilter.ParseIPTables("ip6tables-save", []byte(fw.IP6Tables), true); err != nil {
			return nil, err
		}
	}
	return netfilter.Combine(nft, r4, r6), nil
}

// listenDsts are the addresses a remote client can connect to, and
// whether the server listens beyond loopback. A wildcard listener is
// evaluated at the host's own addresses when known, else at a stand-in
// address of each family (named in the evidence).
func listenDsts(s *snapshot.Snapshot, listen []string) (dsts []netip.Addr, beyondLoopback bool, note string) {
	wild := false
	for _, l := range listen {
		switch l {
		case "*", "0.0.0.0", "::":
			wild, beyondLoopback = true, true
			continue
		case "localhost":
			continue
		}
		a, err := netip.ParseAddr(l)
		if err != nil {
			wild, beyondLoopback = true, true // a host name: its addresses are not known here
			continue
		}
		if !a.IsLoopback() {
			beyondLoopback = true
			dsts = append(dsts, a.Unmap())
		}
	}
	if wild {
		if s.Target.OnHost {
			for _, p := range hbapolicy.LocalAddrs() {
				if !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
					dsts = append(dsts, p.Addr().Unmap())
				}
			}
		}
		if len(dsts) == 0 {
			dsts = []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
			note = " (the listener is a wildcard and the host's addresses are unknown: the firewall was asked for stand-in addresses 192.0.2.1 and 2001:db8::1, so rules matching a destination address may answer differently)"
		}
	}
	return dsts, beyondLoopback, note
}

func checkFirewall(c *Check) {
	h, ok := c.host("firewall")
	if !ok {
		return
	}
	fw := h.Firewall
	if fw == nil {
		c.NotChecked("firewall", "the firewall was not read: the audit reads it as root on the database host")
		return
	}
	if fw.Source == "" {
		c.NotChecked("firewall", fw.Error)
		return
	}
	rules, ok := c.hbaRules()
	if !ok {
		return
	}
	la, ok := c.S.Setting("listen_addresses")
	if !ok {
		c.NotChecked("listen_addresses", c.missingSetting("listen_addresses"))
		return
	}
	port := 5432
	if v, ok := c.S.Setting("port"); ok {
		if n, err := strconv.Atoi(v.Value); err == nil {
			port = n
		}
	}
	rs, err := firewallRuleset(fw)
	if err != nil {
		c.NotChecked("firewall", "the firewall's listing could not be read: "+err.Error())
		return
	}
	listen := guc.SplitList(la.Value)
	dsts, beyond, note := listenDsts(c.S, listen)
	env := hbapolicy.EnvFromSnapshot(c.S)
	users, dbs := candidates(c.S, rules)
	// ssl = off: no connection uses TLS (unknown: assumed on, as the plan
	// does, which counts more lines as accepting, never fewer).
	noTLS := false
	if v, ok := c.S.Setting("ssl"); ok {
		if on, ok := guc.ParseBool(v.Value); ok {
			noTLS = !on
		}
	}
	kinds := firewall.ConnKinds(noTLS, false)

	var bounds []netip.Prefix
	for _, r := range rules {
		if p, ok := r.Prefix(); ok {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			bounds = append(bounds, p)
		}
	}
	// samehost and samenet lines match the host's own addresses and
	// subnets: those cut the space too.
	for _, p := range env.HostAddrs {
		bounds = append(bounds, p.Masked(), netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	bounds = append(bounds, rs.Boundaries()...)
	ps := pieces(bounds)
	portName := fmt.Sprintf("port %d", port)
	source := map[string]string{"nft": "nft -j list ruleset", "iptables": "iptables-save/ip6tables-save", "nft+iptables": "nft -j list ruleset with iptables-save for the iptables-nft tables", "none": "no firewall tool answered"}[rs.Source]
	if fw.Source == "none" {
		source = "no firewall tool answered (" + fw.Error + ")"
	}

	// (d) latent lines: reachable only once listen_addresses widens.
	if !beyond {
		n := 0
		for i := range rules {
			r := &rules[i]
			if r.Method == "reject" || !hbapolicy.Latent(r, listen) {
				continue
			}
			n++
			what := "the firewall's answer for it is not known (not a network)"
			if p, ok := r.Prefix(); ok {
				what = latentVerdicts(rs, p, port)
			}
			c.Fail(Problem{Object: hbaObject(r), Location: r.Location(), Severity: Low, SevSet: true,
				Evidence: fmt.Sprintf("%s is latent (listen_addresses = %q); if the listener widens, %s", hbaEvidence(r), la.Value, what),
				Expected: "the firewall blocks the networks of latent pg_hba.conf lines, or the lines are removed",
				Fix:      firewallFix + " (then remove or harden " + r.Location() + ")", FixKind: FixShell,
				Changes: manualChange("run " + firewallFix + " and remove or harden " + r.Location())})
		}
		if n == 0 {
			c.Pass(portName, fmt.Sprintf("listen_addresses = %q: the server listens on loopback only; no pg_hba.conf line waits for a wider listener", la.Value))
		}
		return
	}

	type hit struct {
		nets  netipx.IPSetBuilder
		where string
		line  *hba.Rule
		why   string
	}
	open := map[string]*hit{}    // firewall rule -> networks opened to no purpose
	blocked := map[string]*hit{} // hba line + firewall rule -> networks
	unknown := map[string]*hit{}
	filtered := false
	for _, pc := range ps {
		if isLoopbackAddr(pc.rep) {
			continue
		}
		acc, undecided := hbaAccepter(rules, pc.rep, users, dbs, env, kinds)
		for _, d := range dsts {
			if d.Is4() != pc.rep.Is4() {
				continue
			}
			v := rs.Eval(netfilter.Packet{Src: pc.rep, Dst: d, DPort: uint16(port), IIf: ""})
			filtered = filtered || v.Filtered
			key := v.Where
			switch v.Kind {
			case netfilter.Unknown:
				k := v.Where + "\x00" + v.Why
				if unknown[k] == nil {
					unknown[k] = &hit{where: v.Where, why: v.Why}
				}
				unknown[k].nets.AddRange(pc.rng)
			case netfilter.Accept:
				if acc == nil && !undecided {
					if open[key] == nil {
						open[key] = &hit{where: v.Where}
					}
					open[key].nets.AddRange(pc.rng)
				}
			default:
				if acc != nil {
					k := acc.Location() + "\x00" + v.Where
					if blocked[k] == nil {
						blocked[k] = &hit{where: v.Where, line: acc, why: string(v.Kind)}
					}
					blocked[k].nets.AddRange(pc.rng)
				}
			}
		}
	}
	bad := false
	if !filtered {
		// (c) nothing filters the port.
		bad = true
		c.Fail(Problem{Object: portName, Severity: High, SevSet: true,
			Evidence: fmt.Sprintf("listen_addresses = %q, and no firewall rule or policy filters %s (%s)%s", la.Value, portName, source, note),
			Expected: "a firewall that allows " + portName + " only from the networks pg_hba.conf accepts",
			Fix:      firewallFix, FixKind: FixShell, Changes: manualChange("derive and load an allow-list: " + firewallFix)})
	} else {
		// (a) open to networks pg_hba.conf rejects anyway.
		for _, k := range sortedKeys(open) {
			x := open[k]
			bad = true
			where := "by " + x.where
			if x.where == "" {
				where = "(no base chain of that family)"
			}
			c.Fail(Problem{Object: portName, Severity: Medium, SevSet: true, Objects: netsLabel(&x.nets),
				Evidence: fmt.Sprintf("the firewall accepts %s from %s %s, and pg_hba.conf accepts no connection from there%s", portName, strings.Join(netsLabel(&x.nets), "; "), where, note),
				Expected: "the port closed to networks pg_hba.conf rejects",
				Fix:      firewallFix, FixKind: FixShell, Changes: manualChange("narrow the firewall to the networks pg_hba.conf accepts: " + firewallFix)})
		}
	}
	// (b) accepted by pg_hba.conf, blocked by the firewall.
	for _, k := range sortedKeys(blocked) {
		x := blocked[k]
		bad = true
		c.Fail(Problem{Object: hbaObject(x.line), Location: x.line.Location(), Severity: Medium, SevSet: true, Objects: netsLabel(&x.nets),
			Evidence: fmt.Sprintf("%s accepts connections from %s, but the firewall %s them at %s%s", x.line.Location(), strings.Join(netsLabel(&x.nets), "; "), map[string]string{"drop": "drops", "reject": "rejects"}[x.why], x.where, note),
			Expected: "the firewall lets in what pg_hba.conf accepts (or the line goes)",
			Fix:      firewallFix, FixKind: FixShell, Changes: manualChange("align the firewall with pg_hba.conf: " + firewallFix + ", or remove " + x.line.Location())})
	}
	// (e) what could not be evaluated.
	for _, k := range sortedKeys(unknown) {
		x := unknown[k]
		c.NotChecked(portName+" from "+strings.Join(netsLabel(&x.nets), "; "), fmt.Sprintf("the firewall's answer is unknown at %s: %s", x.where, x.why))
		bad = true
	}
	if !bad {
		c.Pass(portName, fmt.Sprintf("the firewall (%s) allows %s only from networks pg_hba.conf accepts, and lets all of them in%s", source, portName, note))
	}
}

// latentVerdicts says what the firewall does for a latent line's network.
func latentVerdicts(rs *netfilter.Ruleset, p netip.Prefix, port int) string {
	p = p.Masked()
	src := p.Addr()
	if src.Is4In6() {
		src = src.Unmap()
	}
	dst := netip.MustParseAddr("192.0.2.1")
	if src.Is6() {
		dst = netip.MustParseAddr("2001:db8::1")
	}
	v := rs.Eval(netfilter.Packet{Src: src, Dst: dst, DPort: uint16(port), IIf: ""})
	switch v.Kind {
	case netfilter.Accept:
		if !v.Filtered {
			return fmt.Sprintf("no firewall rule would stop %s from %s", fmt.Sprintf("port %d", port), p)
		}
		return fmt.Sprintf("the firewall would accept port %d from %s (%s)", port, p, v.Where)
	case netfilter.Unknown:
		return fmt.Sprintf("the firewall's answer for %s is unknown (%s: %s)", p, v.Where, v.Why)
	}
	return fmt.Sprintf("the firewall would %s port %d from %s (%s)", v.Kind, port, p, v.Where)
}

// netsLabel names a set of addresses by its prefixes where a range is
// one prefix, else as a range; at most 8, then a count.
func netsLabel(b *netipx.IPSetBuilder) []string {
	set, err := b.IPSet()
	if err != nil {
		return nil
	}
	var out []string
	rs := set.Ranges()
	for i, r := range rs {
		if i == 8 {
			out = append(out, fmt.Sprintf("and %d more ranges", len(rs)-8))
			break
		}
		if p, ok := r.Prefix(); ok {
			out = append(out, p.String())
		} else {
			out = append(out, r.String())
		}
	}
	return out
}

func appendOnce(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

func sortedKeys[T any](m map[string]T) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}
