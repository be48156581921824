// Package firewall derives, from what pg_hba.conf and listen_addresses
// let in, the smallest allow-list for the PostgreSQL port, and renders it
// as nftables, iptables/ip6tables-restore and firewalld scripts. It never
// loads anything: applying is another package's job.
package firewall

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"go4.org/netipx"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// Input is what the plan is derived from.
type Input struct {
	// Rules are pg_hba.conf's lines as the server loads them, in order.
	Rules []hba.Rule
	// Env answers membership and the host's addresses (samehost/samenet).
	Env hba.Env
	// Roles are the roles that exist, when known: with Env's membership
	// they decide +group and samerole lines rather than leaving them open.
	// (Other names behave as a name no line spells, which is always tried.)
	Roles []string
	// Listen is listen_addresses split into its entries.
	Listen []string
	// Port is the server's port (5432 when 0).
	Port int
	// NoTLS says the server has ssl = off (no connection can use TLS, so
	// hostssl lines never match and hostnossl lines match everything);
	// NoGSS says it cannot do GSSAPI encryption. Unknown: false, which
	// opens more, never less.
	NoTLS, NoGSS bool
	// Session is the address pgaegis's own connection comes from, when
	// known: a plan that would stop it from connecting again says so.
	Session netip.Addr
}

// Source is one allowed network and the pg_hba.conf lines that open it.
type Source struct {
	Network netip.Prefix `json:"network"`
	Lines   []string     `json:"lines"`
}

// Policy is the derived allow-list for the PostgreSQL port.
type Policy struct {
	Port   int      `json:"port"`
	Listen []string `json:"listen_addresses"`
	// ListensV4 and ListensV6 say whether the server takes TCP
	// connections beyond loopback on that family at all.
	ListensV4 bool `json:"listens_ipv4"`
	ListensV6 bool `json:"listens_ipv6"`
	// Allow4 and Allow6 are the sources from which some ordinary
	// connection can reach an accepting pg_hba.conf line.
	Allow4 []Source `json:"allow_ipv4"`
	Allow6 []Source `json:"allow_ipv6"`
	// Replication4 and Replication6 are the same for physical replication.
	Replication4 []Source `json:"replication_ipv4"`
	Replication6 []Source `json:"replication_ipv6"`
	// OpenToAll is set when every address of a family is allowed.
	OpenToAll bool `json:"open_to_all"`
	// Notes say what the plan could not decide or cannot express.
	Notes []string `json:"notes"`
}

var (
	all4       = netip.MustParsePrefix("0.0.0.0/0")
	all6       = netip.MustParsePrefix("::/0")
	loopback4  = netip.MustParsePrefix("127.0.0.0/8")
	loopback6  = netip.MustParsePrefix("::1/128")
	mapped     = netip.MustParsePrefix("::ffff:0:0/96")
	probeName  = "pgaegis-firewall-probe\x00" // a name no role or database can have
	maxProbes  = 4096
	maxRegions = 1 << 14
)

// Derive computes the policy. It errs only on input it cannot use (a
// port out of range); everything undecidable becomes an opening and a note.
func Derive(in Input) (*Policy, error) {
	p := &Policy{Port: in.Port, Listen: slices.Clone(in.Listen)}
	if p.Port == 0 {
		p.Port = 5432
	}
	if p.Port < 1 || p.Port > 65535 {
		return nil, fmt.Errorf("port %d is out of range", p.Port)
	}
	if p.Listen == nil {
		p.Listen = []string{}
	}
	d := &deriver{in: in, p: p}
	d.listen()
	rules := d.prepare()
	for _, fam := range []struct {
		on       bool
		space    netip.Prefix
		out, rep *[]Source
	}{{p.ListensV4, all4, &p.Allow4, &p.Replication4}, {p.ListensV6, all6, &p.Allow6, &p.Replication6}} {
		if !fam.on {
			continue
		}
		*fam.out = d.family(rules, fam.space, false)
		*fam.rep = d.family(rules, fam.space, true)
	}
	if !p.ListensV4 && !p.ListensV6 {
		d.note("listen_addresses takes no TCP connection beyond loopback: nothing needs to be opened; the port is dropped for every other source anyway")
	}
	for _, l := range []struct {
		what string
		src  []Source
	}{{"connections", p.Allow4}, {"connections", p.Allow6}, {"replication connections", p.Replication4}, {"replication connections", p.Replication6}} {
		if len(l.src) == 1 && l.src[0].Network.Bits() == 0 {
			p.OpenToAll = true
			f := fam(l.src[0].Network)
			d.note(fmt.Sprintf("WARNING: pg_hba.conf accepts %s from every %s address (%s): the firewall opens port %d to the whole %s Internet; narrow the line to the networks that need it",
				l.what, f, strings.Join(l.src[0].Lines, ", "), p.Port, f))
		} else if len(l.src) > 0 && half(l.src) {
			d.note(fmt.Sprintf("WARNING: pg_hba.conf accepts %s from more than half of all %s addresses: the port is open to most of the Internet", l.what, fam(l.src[0].Network)))
		}
	}
	if in.Session.IsValid() && !in.Session.IsLoopback() && !p.allows(in.Session) {
		d.note(fmt.Sprintf("WARNING: pgaegis's own session comes from %s, which this plan does not allow: established connections survive, a new one from there would be dropped", in.Session))
	}
	p.Notes = dedupe(p.Notes)
	// Empty lists, not null, in the JSON form.
	for _, l := range []*[]Source{&p.Allow4, &p.Allow6, &p.Replication4, &p.Replication6} {
		if *l == nil {
			*l = []Source{}
		}
	}
	if p.Notes == nil {
		p.Notes = []string{}
	}
	return p, nil
}

// half reports whether the sources cover more than half of their family
// (a /1 or wider, or two of the same width add up).
func half(src []Source) bool {
	var sum float64
	for _, s := range src {
		sum += math.Ldexp(1, -s.Network.Bits())
	}
	return sum > 0.5
}

func fam(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// allows reports whether a packet from a would pass the port's rules.
func (p *Policy) allows(a netip.Addr) bool {
	a = a.Unmap()
	for _, l := range [][]Source{p.Allow4, p.Allow6, p.Replication4, p.Replication6} {
		for _, s := range l {
			if s.Network.Contains(a) {
				return true
			}
		}
	}
	return false
}

// Allows reports whether the plan lets a TCP connection from a reach the
// port (loopback always can).
func (p *Policy) Allows(a netip.Addr) bool {
	return a.Unmap().IsLoopback() || p.allows(a)
}

type deriver struct {
	in Input
	p  *Policy
}

func (d *deriver) note(s string) { d.p.Notes = append(d.p.Notes, s) }

// listen decides which families the server accepts TCP on beyond loopback.
func (d *deriver) listen() {
	if len(d.in.Listen) == 0 {
		d.note("listen_addresses is not known or empty: the server's default, localhost, is assumed")
	}
	for _, raw := range d.in.Listen {
		l := strings.TrimSpace(raw)
		switch l {
		case "*":
			d.p.ListensV4, d.p.ListensV6 = true, true
			continue
		case "0.0.0.0":
			d.p.ListensV4 = true
			continue
		case "::":
			d.p.ListensV6 = true
			continue
		case "localhost", "":
			continue
		}
		a, err := netip.ParseAddr(l)
		if err != nil {
			d.p.ListensV4, d.p.ListensV6 = true, true
			d.note(fmt.Sprintf("listen_addresses names host %q: resolved by the server at start, so both families are planned for", l))
			continue
		}
		if a.Unmap().IsLoopback() {
			continue
		}
		if a.Is4() {
			d.p.ListensV4 = true
		} else {
			d.p.ListensV6 = true
		}
	}
	if d.p.ListensV4 != d.p.ListensV6 && (d.p.ListensV4 || d.p.ListensV6) {
		other := "IPv6"
		if d.p.ListensV6 {
			other = "IPv4"
		}
		d.note(fmt.Sprintf("the server does not listen on %s beyond loopback: pg_hba.conf's %s lines open nothing", other, other))
	}
}

// prepare keeps the TCP lines the firewall can reason about, in order,
// and explains the others. Removing a line is always opening: a removed
// reject line lets later lines decide, a removed accept line is named in a
// note as needing a hand-made entry.
func (d *deriver) prepare() []hba.Rule {
	var out []hba.Rule
	for _, r := range d.in.Rules {
		if r.Type == hba.Local {
			continue
		}
		accept := r.Method != "reject"
		switch r.AddrKind {
		case hba.AddrHostname:
			if accept {
				d.note(fmt.Sprintf("%s names host %q: a firewall cannot follow DNS, so its addresses are not opened; add them by hand (getent ahosts %s) if they need the port", r.Location(), r.Address, r.Address))
			} else {
				d.note(fmt.Sprintf("%s rejects host %q: a firewall cannot follow DNS, so the line is treated as absent (later lines decide)", r.Location(), r.Address))
			}
			continue
		case hba.AddrSameHost, hba.AddrSameNet:
			if d.in.Env.HostAddrs == nil {
				if accept {
					d.note(fmt.Sprintf("%s: %s depends on the server host's interface addresses, which are not known here (run on the host): nothing is opened for it", r.Location(), r.AddrKind))
				} else {
					d.note(fmt.Sprintf("%s: %s is not known here: the reject line is treated as absent", r.Location(), r.AddrKind))
				}
				continue
			}
			if r.AddrKind == hba.AddrSameHost {
				d.note(fmt.Sprintf("%s: samehost is the server's own addresses; such connections normally arrive on loopback, which is never blocked", r.Location()))
			} else {
				d.note(fmt.Sprintf("%s: samenet is the host's subnets now (%s); the plan follows them only until the interfaces change", r.Location(), prefixList(d.in.Env.HostAddrs)))
			}
		case hba.AddrCIDR:
			if r.Bits < 0 {
				// A non-contiguous mask is no prefix: an accept line opens
				// the smallest prefix around it, a reject line is dropped.
				if !accept {
					d.note(fmt.Sprintf("%s: the netmask %s is not contiguous: a firewall prefix cannot express it, so the reject line is treated as absent", r.Location(), r.Mask))
					continue
				}
				bits := leadingOnes(r.Mask)
				d.note(fmt.Sprintf("%s: the netmask %s is not contiguous: the enclosing /%d is opened", r.Location(), r.Mask, bits))
				r.Bits = bits
				r.Mask = maskOf(bits, r.Addr.Is4())
				r.Addr = netip.PrefixFrom(r.Addr, bits).Masked().Addr()
			}
			if r.Addr.Is4In6() {
				d.note(fmt.Sprintf("%s names IPv4-mapped IPv6 addresses: PostgreSQL's IPv6 sockets are IPV6_V6ONLY, so IPv4 clients arrive as IPv4 and never match it; it opens nothing", r.Location()))
			}
		}
		out = append(out, r)
	}
	return out
}

func prefixList(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Masked().String())
	}
	return strings.Join(s, ", ")
}

func leadingOnes(m netip.Addr) int {
	n := 0
	for _, b := range m.AsSlice() {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) == 0 {
				return n
			}
			n++
		}
	}
	return n
}

func maskOf(bits int, v4 bool) netip.Addr {
	l := 16
	if v4 {
		l = 4
	}
	b := make([]byte, l)
	for i := 0; i < bits; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// family computes the allowed sources of one address family: the space
// is cut into regions that every line treats alike, each region's first
// address is matched against the rules for every probe connection, and
// the accepted regions are merged into the fewest prefixes.
func (d *deriver) family(rules []hba.Rule, space netip.Prefix, replication bool) []Source {
	regions := regionsOf(rules, space, d.in.Env.HostAddrs)
	if len(regions) > maxRegions {
		d.note(fmt.Sprintf("pg_hba.conf cuts the address space into %d regions: only the first %d are examined exactly, the rest are opened", len(regions), maxRegions))
	}
	lines := map[netipx.IPRange][]string{}
	var b netipx.IPSetBuilder
	for i, rg := range regions {
		if rg.From().Is6() && (mapped.Contains(rg.From()) || loopback6.Contains(rg.From())) || loopback4.Contains(rg.From()) {
			continue // never on the wire from outside / always accepted on lo
		}
		var opened []string
		if i >= maxRegions {
			opened = []string{"(not examined)"}
		} else {
			opened = d.opens(rules, rg.From(), replication)
		}
		if len(opened) > 0 {
			b.AddRange(rg)
			lines[rg] = opened
		}
	}
	// Loopback and mapped addresses were left out above: no packet from
	// them arrives from outside, so they may be added back wherever that
	// gives fewer prefixes, and a family open but for them is open to all.
	set, _ := b.IPSet()
	if set.Equal(fullExcept(space)) {
		var ls []string
		for _, l := range lines {
			ls = append(ls, l...)
		}
		return []Source{{Network: space, Lines: sortLines(ls)}}
	}
	var wide netipx.IPSetBuilder
	wide.AddSet(set)
	for _, dc := range []netip.Prefix{loopback4, loopback6, mapped} {
		if dc.Addr().Is4() == space.Addr().Is4() {
			wide.AddPrefix(dc)
		}
	}
	if w, _ := wide.IPSet(); len(w.Prefixes()) < len(set.Prefixes()) {
		set = w
	}
	var out []Source
	for _, pfx := range set.Prefixes() {
		var ls []string
		r := netipx.RangeOfPrefix(pfx)
		for rg, l := range lines {
			if rangesOverlap(r, rg) && len(l) > 0 {
				ls = append(ls, l...)
			}
		}
		out = append(out, Source{Network: pfx, Lines: sortLines(ls)})
	}
	return out
}

func fullExcept(space netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	b.AddPrefix(space)
	if space.Addr().Is4() {
		b.RemovePrefix(loopback4)
	} else {
		b.RemovePrefix(loopback6)
		b.RemovePrefix(mapped)
	}
	s, _ := b.IPSet()
	return s
}

func rangesOverlap(a, b netipx.IPRange) bool {
	return !(a.To().Less(b.From()) || b.To().Less(a.From()))
}

func sortLines(ls []string) []string {
	ls = dedupe(ls)
	sort.SliceStable(ls, func(i, j int) bool { return lineLess(ls[i], ls[j]) })
	return ls
}

// lineLess orders file:line names by file, then by line number.
func lineLess(a, b string) bool {
	fa, la := splitLoc(a)
	fb, lb := splitLoc(b)
	if fa != fb {
		return fa < fb
	}
	return la < lb
}

func splitLoc(s string) (string, int) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0
	}
	n := 0
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' {
			return s, 0
		}
		n = n*10 + int(c-'0')
	}
	return s[:i], n
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// regionsOf cuts space at every boundary of a rule network (and of the
// host's addresses for samehost/samenet), so that within one region every
// line's address test gives the same answer.
func regionsOf(rules []hba.Rule, space netip.Prefix, host []netip.Prefix) []netipx.IPRange {
	var at []netip.Prefix
	for i := range rules {
		if p, ok := rules[i].Prefix(); ok {
			at = append(at, p)
		}
	}
	for _, h := range host {
		at = append(at, netip.PrefixFrom(h.Addr(), h.Addr().BitLen()), h)
	}
	// Loopback and mapped are cut out so that they never join a region.
	return Partition(space, append(at, loopback4, loopback6, mapped))
}

// Partition cuts space at the first address of each prefix and just past
// its last (prefixes of the other family are ignored): within one range
// every prefix either holds all addresses or none, so the range's first
// address answers for all of it. The plan and NET-03 both judge pg_hba.conf
// and the firewall this way.
func Partition(space netip.Prefix, at []netip.Prefix) []netipx.IPRange {
	first, last := space.Masked().Addr(), netipx.PrefixLastIP(space)
	cuts := map[netip.Addr]bool{first: true}
	for _, p := range at {
		if p.Addr().Is4() != space.Addr().Is4() {
			continue
		}
		p = p.Masked()
		cuts[p.Addr()] = true
		if n := netipx.PrefixLastIP(p).Next(); n.IsValid() {
			cuts[n] = true
		}
	}
	var pts []netip.Addr
	for a := range cuts {
		pts = append(pts, a)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Less(pts[j]) })
	var out []netipx.IPRange
	for i, a := range pts {
		end := last
		if i+1 < len(pts) {
			end = pts[i+1].Prev()
		}
		out = append(out, netipx.IPRangeFrom(a, end))
	}
	return out
}

// probe is one (user, database) a connection may ask for.
type probe struct{ user, db string }

// probes are every user and database name that could make a line match
// differently: the names written in the rules, the roles and databases
// that exist, and one name that is none of them (what "all" alone lets
// in). A line the probes cannot decide (a regular expression, membership
// unknown) comes back from hba.Match as undecided, which opens.
func (d *deriver) probes(rules []hba.Rule, replication bool) ([]probe, bool) {
	users := []string{probeName}
	dbs := []string{probeName}
	membership := false
	for _, r := range rules {
		for _, t := range r.Users {
			v := t.Value
			if !t.Quoted && strings.HasPrefix(v, "+") {
				membership = true
				dbs = append(dbs, v[1:])
				continue
			}
			if t.IsKeyword("all") || strings.HasPrefix(v, "/") {
				continue
			}
			users = append(users, v)
			dbs = append(dbs, v) // sameuser
		}
		for _, t := range r.Databases {
			if t.IsKeyword("samerole") || t.IsKeyword("samegroup") {
				membership = true
			}
			if isDBKeyword(t) || strings.HasPrefix(t.Value, "/") {
				continue
			}
			dbs = append(dbs, t.Value)
			users = append(users, t.Value) // sameuser
		}
	}
	// A name no line spells behaves as the fresh one, unless membership
	// decides: then every role may be the one that is a member.
	if membership {
		users = append(users, d.in.Roles...)
		dbs = append(dbs, d.in.Roles...)
	}
	users, dbs = dedupe(users), dedupe(dbs)
	if replication {
		dbs = []string{"replication"}
	}
	var out []probe
	for _, u := range users {
		for _, db := range dbs {
			out = append(out, probe{u, db})
		}
	}
	if len(out) <= maxProbes {
		return out, false
	}
	// Each user with its own name as database, and each with the fresh
	// name, still decide sameuser and "all"; the lines only other
	// combinations would decide are opened by the caller.
	d.note(fmt.Sprintf("pg_hba.conf names %d users and %d databases for one network: user/database combinations are sampled, and lines only those would decide are opened", len(users), len(dbs)))
	out = out[:0]
	for _, u := range users {
		out = append(out, probe{u, u}, probe{u, probeName})
	}
	for _, db := range dbs {
		out = append(out, probe{probeName, db})
	}
	return out, true
}

func isDBKeyword(t hba.Token) bool {
	for _, k := range []string{"all", "sameuser", "samerole", "samegroup", "replication"} {
		if t.IsKeyword(k) {
			return true
		}
	}
	return false
}

// ConnKind is one kind of TCP connection a line type can require.
type ConnKind struct{ SSL, GSS bool }

// ConnKinds are the kinds of TCP connection a client can make to a server
// that can (or cannot: noTLS, noGSS) encrypt: with ssl = off no
// connection uses TLS, so hostssl lines match nothing. The plan and the
// firewall audit (NET-03) judge pg_hba.conf through the same list.
func ConnKinds(noTLS, noGSS bool) []ConnKind {
	var out []ConnKind
	for _, k := range []ConnKind{{SSL: true}, {}, {GSS: true}} {
		if k.SSL && noTLS || k.GSS && noGSS {
			continue
		}
		out = append(out, k)
	}
	return out
}

// opens returns the lines through which some connection from a is
// accepted (empty: every connection from a is refused or rejected).
func (d *deriver) opens(rules []hba.Rule, a netip.Addr, replication bool) []string {
	var opened []string
	for _, cl := range ConnKinds(d.in.NoTLS, d.in.NoGSS) {
		site := hba.Conn{Addr: a, SSL: cl.SSL, GSS: cl.GSS}
		var here []hba.Rule
		for i := range rules {
			if hba.SiteMatches(&rules[i], site, d.in.Env) != hba.No {
				here = append(here, rules[i])
			}
		}
		if len(here) == 0 {
			continue
		}
		probes, sampled := d.probes(here, replication)
		for _, pr := range probes {
			c := site
			c.User, c.Database, c.Replication = pr.user, pr.db, replication
			res := hba.Match(here, c, d.in.Env)
			switch {
			case len(res.Depends) > 0:
				// Undecided: every line that might match, and the first
				// that surely does, may be the one; the accepting ones open.
				for _, r := range res.Skipped {
					if r.Method != "reject" {
						opened = append(opened, r.Location())
					}
				}
				if m := hba.Match(skip(here, res.Skipped), c, d.in.Env); m.Matched && m.Rule.Method != "reject" {
					opened = append(opened, m.Rule.Location())
				}
				for _, dep := range res.Depends {
					d.note("undecided, so opened: " + dep)
				}
			case res.Matched && res.Rule.Method != "reject":
				opened = append(opened, res.Rule.Location())
			}
		}
		// Names the probes cannot produce (regular expressions), or a
		// sample of names: an accepting line that no earlier line
		// catches for every user and database may still be reached.
		for i := range here {
			r := &here[i]
			if r.Method == "reject" || !(sampled || hasRegex(r)) || !takesKind(r, replication) {
				continue
			}
			if !caughtBefore(here[:i], site, replication, d.in.Env) {
				opened = append(opened, r.Location())
				if hasRegex(r) {
					d.note(fmt.Sprintf("%s uses a regular expression for names: which users or databases it takes is not decided here, so its networks are opened", r.Location()))
				}
			}
		}
	}
	return dedupe(opened)
}

func skip(rules []hba.Rule, drop []*hba.Rule) []hba.Rule {
	var out []hba.Rule
	for _, r := range rules {
		if !slices.ContainsFunc(drop, func(x *hba.Rule) bool { return x.File == r.File && x.Line == r.Line }) {
			out = append(out, r)
		}
	}
	return out
}

func hasRegex(r *hba.Rule) bool {
	for _, ts := range [][]hba.Token{r.Users, r.Databases} {
		for _, t := range ts {
			if strings.HasPrefix(t.Value, "/") {
				return true
			}
		}
	}
	return false
}

// caughtBefore reports whether an earlier line surely matches every
// connection of this site whatever its user and database.
func caughtBefore(before []hba.Rule, site hba.Conn, replication bool, env hba.Env) bool {
	for i := range before {
		r := &before[i]
		if hba.SiteMatches(r, site, env) != hba.Yes {
			continue
		}
		users := slices.ContainsFunc(r.Users, func(t hba.Token) bool { return t.IsKeyword("all") })
		dbKw := "all"
		if replication {
			dbKw = "replication"
		}
		dbs := slices.ContainsFunc(r.Databases, func(t hba.Token) bool { return t.IsKeyword(dbKw) })
		if users && dbs {
			return true
		}
	}
	return false
}

// takesKind reports whether the database field can match an ordinary
// connection (any name but the replication keyword) or a physical
// replication one (the replication keyword only).
func takesKind(r *hba.Rule, replication bool) bool {
	for _, t := range r.Databases {
		if t.IsKeyword("replication") == replication {
			return true
		}
	}
	return false
}
