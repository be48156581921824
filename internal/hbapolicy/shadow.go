package hbapolicy

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// shadowIndex finds, for a line, the earlier lines that could cover it
// without looking at every earlier line: checking each pair made lint
// quadratic (40k lines took 17 s). Each dimension a covering line must
// agree on (users, databases, connection type and address) has its own
// index; a line is checked against the smallest candidate set, which is a
// superset of its coverers, in file order, so the first coverer found is
// the one the pairwise scan found.
type shadowIndex struct {
	allUsers, allDBs, replDBs []int
	byUser, byDB              map[string][]int
	addr                      map[string]*addrIndex // by connection type
	// For the union check: every line's networks (see indexAddresses).
	byPrefix     map[netip.Prefix][]int
	lens4, lens6 map[int]bool
	sorted       []prefixEntry
	next         int
	rules        []hba.Rule
}

type addrIndex struct {
	any, local, sameHost, sameNet []int
	prefixes                      map[netip.Prefix][]int
	lens4, lens6                  map[int]bool
}

func newShadowIndex() *shadowIndex {
	return &shadowIndex{byUser: map[string][]int{}, byDB: map[string][]int{}, addr: map[string]*addrIndex{}}
}

// appendOnce adds i unless it was the last one added (a line naming the
// same token twice).
func appendOnce(l []int, i int) []int {
	if n := len(l); n > 0 && l[n-1] == i {
		return l
	}
	return append(l, i)
}

func (x *shadowIndex) add(i int, r *hba.Rule) {
	x.next = i + 1
	if hasKeyword(r.Users, "all") {
		x.allUsers = append(x.allUsers, i)
	} else {
		for _, t := range r.Users {
			x.byUser[t.Value] = appendOnce(x.byUser[t.Value], i)
		}
	}
	if hasKeyword(r.Databases, "all") {
		x.allDBs = append(x.allDBs, i)
	}
	if hasKeyword(r.Databases, "replication") {
		x.replDBs = append(x.replDBs, i)
	}
	for _, t := range r.Databases {
		if !t.IsKeyword("all") && !t.IsKeyword("replication") {
			x.byDB[t.Value] = appendOnce(x.byDB[t.Value], i)
		}
	}
	a := x.addr[r.Type]
	if a == nil {
		a = &addrIndex{prefixes: map[netip.Prefix][]int{}, lens4: map[int]bool{}, lens6: map[int]bool{}}
		x.addr[r.Type] = a
	}
	switch {
	case r.Type == hba.Local:
		a.local = append(a.local, i)
	case r.AddrKind == hba.AddrAll:
		a.any = append(a.any, i)
	case r.AddrKind == hba.AddrSameHost:
		a.sameHost = append(a.sameHost, i)
	case r.AddrKind == hba.AddrSameNet:
		a.sameNet = append(a.sameNet, i)
	case r.AddrKind == hba.AddrCIDR:
		if p, ok := r.Prefix(); ok {
			a.prefixes[p] = append(a.prefixes[p], i)
			if p.Addr().Is4() {
				a.lens4[p.Bits()] = true
			} else {
				a.lens6[p.Bits()] = true
			}
		}
	}
	// Host names and non-contiguous masks cover nothing.
}

// candidates returns the lists, each in file order, whose union holds
// every earlier line that could cover r (one dimension: the smallest).
func (x *shadowIndex) candidates(r *hba.Rule) [][]int {
	var best [][]int
	bestN := -1
	consider := func(lists [][]int) {
		n := 0
		for _, l := range lists {
			n += len(l)
		}
		if bestN < 0 || n < bestN {
			best, bestN = lists, n
		}
	}
	// Users: a coverer names "all" or every user of r, so any one of them.
	if len(r.Users) > 0 {
		var pick []int
		for k, t := range r.Users {
			if l := x.byUser[t.Value]; k == 0 || len(l) < len(pick) {
				pick = l
			}
		}
		consider([][]int{x.allUsers, pick})
	}
	// Databases: likewise, with replication matched only by the keyword.
	if len(r.Databases) > 0 {
		var pick [][]int
		pickN := -1
		for _, t := range r.Databases {
			lists := [][]int{x.allDBs, x.byDB[t.Value]}
			if t.IsKeyword("replication") {
				lists = [][]int{x.replDBs}
			}
			n := 0
			for _, l := range lists {
				n += len(l)
			}
			if pickN < 0 || n < pickN {
				pick, pickN = lists, n
			}
		}
		consider(pick)
	}
	// Connection type and address.
	var lists [][]int
	for typ, a := range x.addr {
		if !typeCovers(typ, r.Type) {
			continue
		}
		if r.Type == hba.Local {
			lists = append(lists, a.local)
			continue
		}
		lists = append(lists, a.any)
		switch r.AddrKind {
		case hba.AddrSameHost:
			lists = append(lists, a.sameHost, a.sameNet)
		case hba.AddrSameNet:
			lists = append(lists, a.sameNet)
		case hba.AddrCIDR:
			pb, ok := r.Prefix()
			if !ok {
				break
			}
			lookup := func(p netip.Prefix, lens map[int]bool) {
				for n := range lens {
					if n <= p.Bits() {
						if l := a.prefixes[netip.PrefixFrom(p.Addr(), n).Masked()]; l != nil {
							lists = append(lists, l)
						}
					}
				}
			}
			if pb.Addr().Is4() {
				lookup(pb, a.lens4)
			} else {
				lookup(pb, a.lens6)
				if pb.Addr().Is4In6() && pb.Bits() >= 96 {
					// An IPv4 rule matches IPv4-mapped clients too.
					lookup(netip.PrefixFrom(pb.Addr().Unmap(), pb.Bits()-96), a.lens4)
				}
			}
		}
	}
	consider(lists)
	return best
}

// firstCover returns the earliest line among the candidates that covers r.
func firstCover(rules []hba.Rule, lists [][]int, r *hba.Rule) (int, bool) {
	var idx []int
	if len(lists) == 1 {
		idx = lists[0] // already in file order
	} else {
		for _, l := range lists {
			idx = append(idx, l...)
		}
		sort.Ints(idx)
	}
	for _, i := range idx {
		if covers(&rules[i], r) {
			return i, true
		}
	}
	return 0, false
}

// An address interval, inclusive; IPv4 and IPv6 endpoints never mix in
// one interval (netip orders every IPv4 address before every IPv6 one).
type span struct{ lo, hi netip.Addr }

var (
	all4 = span{netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})}
	all6 = span{netip.IPv6Unspecified(), netip.AddrFrom16([16]byte{0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 255, 8: 255, 9: 255, 10: 255, 11: 255, 12: 255, 13: 255, 14: 255, 15: 255})}
)

func prefixSpan(p netip.Prefix) span {
	lo := p.Masked().Addr()
	b := lo.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	hi, _ := netip.AddrFromSlice(b)
	return span{lo, hi}
}

// spans is the set of client addresses a line's address field matches as
// intervals; ok is false for address kinds that are not intervals known
// from the file (host names, samehost, samenet, non-contiguous masks).
func spans(r *hba.Rule) ([]span, bool) {
	switch r.AddrKind {
	case hba.AddrAll:
		return []span{all4, all6}, true
	case hba.AddrCIDR:
		p, ok := r.Prefix()
		if !ok {
			return nil, false
		}
		s := prefixSpan(p)
		if p.Addr().Is4() {
			// An IPv4 line also matches IPv4-mapped IPv6 clients.
			m := prefixSpan(netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96))
			return []span{s, m}, true
		}
		return []span{s}, true
	}
	return nil, false
}

// sameAddrToken: a covers b's address by being the same non-interval
// token (samenet also takes samehost).
func sameAddrToken(a, b *hba.Rule) bool {
	switch b.AddrKind {
	case hba.AddrSameHost:
		return a.AddrKind == hba.AddrSameHost || a.AddrKind == hba.AddrSameNet
	case hba.AddrSameNet:
		return a.AddrKind == hba.AddrSameNet
	case hba.AddrHostname:
		return a.AddrKind == hba.AddrHostname && a.Address == b.Address
	case hba.AddrCIDR:
		return a.AddrKind == hba.AddrCIDR && a.Bits < 0 && b.Bits < 0 && a.Addr == b.Addr && a.Mask == b.Mask
	}
	return false
}

// coverSpans finds lines among cs whose intervals cover every target
// interval, picking greedily the one reaching farthest (the fewest lines
// for one dimension); nil when some address stays uncovered.
func coverSpans(targets []span, cs []*hba.Rule) []*hba.Rule {
	type iv struct {
		span
		r *hba.Rule
	}
	var ivs []iv
	for _, r := range cs {
		ss, _ := spans(r)
		for _, s := range ss {
			ivs = append(ivs, iv{s, r})
		}
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].lo.Less(ivs[j].lo) })
	var used []*hba.Rule
	for _, t := range targets {
		cur, k := t.lo, 0
		for {
			var best *iv
			for ; k < len(ivs) && ivs[k].lo.Compare(cur) <= 0; k++ {
				if ivs[k].hi.Compare(cur) >= 0 && (best == nil || ivs[k].hi.Compare(best.hi) > 0) {
					best = &ivs[k]
				}
			}
			if best == nil {
				return nil
			}
			used = append(used, best.r)
			if best.hi.Compare(t.hi) >= 0 {
				break
			}
			cur = best.hi.Next()
			// Intervals skipped above end before cur: none can help later.
		}
	}
	return used
}

// coverCells checks every cell of r's connection space (kind × database
// class × role class × addresses) against the lines cs, and returns the
// lines it used, or nil when some cell is left uncovered.
func coverCells(r *hba.Rule, cs []*hba.Rule) []*hba.Rule {
	targets, interval := spans(r)
	var used []*hba.Rule
	var cell []*hba.Rule
	for k := kindLocal; k <= kindPlain; k <<= 1 {
		if kinds(r.Type)&k == 0 {
			continue
		}
		for _, u := range userClasses(r.Users) {
			for _, d := range dbClasses(r.Databases) {
				cell = cell[:0]
				for _, c := range cs {
					if kinds(c.Type)&k != 0 && userCoversClass(c.Users, u) && dbCoversClass(c.Databases, d) {
						cell = append(cell, c)
					}
				}
				if len(cell) == 0 {
					return nil
				}
				if k == kindLocal {
					used = append(used, cell[0])
					continue
				}
				if !interval {
					if i := indexFunc(cell, func(c *hba.Rule) bool { return sameAddrToken(c, r) }); i >= 0 {
						used = append(used, cell[i])
						continue
					}
					// Whatever the host's interfaces or the name's
					// addresses, they are IPv4 or IPv6 addresses.
					targets = []span{all4, all6}
				}
				u := coverSpans(targets, cell)
				if u == nil {
					return nil
				}
				used = append(used, u...)
			}
		}
	}
	return used
}

func indexFunc(rs []*hba.Rule, f func(*hba.Rule) bool) int {
	for i, r := range rs {
		if f(r) {
			return i
		}
	}
	return -1
}

// unionCover returns the earlier lines that together cover r, in file
// order and none of them redundant, or nil. It first asks whether any
// earlier line takes one connection of r (most lines fail there, through
// the indexes), then checks every cell against the earlier lines that
// share a role or database class with r.
func (x *shadowIndex) unionCover(rules []hba.Rule, r *hba.Rule) []*hba.Rule {
	if kinds(r.Type) == 0 || len(r.Users) == 0 || len(r.Databases) == 0 {
		return nil
	}
	if p, ok := probe(r); ok {
		if _, ok := firstCover(rules, x.candidates(&p), &p); !ok {
			return nil
		}
	}
	cand := x.overlapping(r)
	cs := make([]*hba.Rule, 0, len(cand))
	pos := make(map[*hba.Rule]int, len(cand))
	for _, i := range cand {
		if kinds(rules[i].Type)&kinds(r.Type) != 0 {
			cs = append(cs, &rules[i])
			pos[&rules[i]] = i
		}
	}
	used := coverCells(r, cs)
	if used == nil {
		return nil
	}
	// Deduplicate in file order, then drop lines the others make redundant.
	seen := map[*hba.Rule]bool{}
	var set []*hba.Rule
	for _, c := range used {
		if !seen[c] {
			seen[c] = true
			set = append(set, c)
		}
	}
	sort.Slice(set, func(i, j int) bool { return pos[set[i]] < pos[set[j]] })
	// Quadratic in the set's size: past 64 lines, the greedy set is kept.
	for i := len(set) - 1; i >= 0 && len(set) > 1 && len(set) <= 64; i-- {
		rest := append(append([]*hba.Rule(nil), set[:i]...), set[i+1:]...)
		if coverCells(r, rest) != nil {
			set = rest
		}
	}
	return set
}

// overlapping lists, in file order, the earlier lines that share a role
// class with r, or those that share a database class (the fewer): only
// they can cover any cell of r.
func (x *shadowIndex) overlapping(r *hba.Rule) []int {
	var users, dbs [][]int
	users = append(users, x.allUsers)
	for _, c := range userClasses(r.Users) {
		if c != keyOther {
			users = append(users, x.byUser[classToken(c).Value])
		}
	}
	for _, c := range dbClasses(r.Databases) {
		switch c {
		case keyRepl:
			dbs = append(dbs, x.replDBs)
		case keyOther:
			dbs = append(dbs, x.allDBs)
		default:
			dbs = append(dbs, x.allDBs, x.byDB[classToken(c).Value])
		}
	}
	n := func(ls [][]int) int {
		t := 0
		for _, l := range ls {
			t += len(l)
		}
		return t
	}
	pick := users
	if n(dbs) < n(users) {
		pick = dbs
	}
	if a, ok := x.addrOverlapping(r, n(pick)); ok {
		pick = [][]int{a}
	}
	var idx []int
	for _, l := range pick {
		idx = append(idx, l...)
	}
	sort.Ints(idx)
	out := idx[:0]
	for k, i := range idx {
		if k == 0 || i != idx[k-1] {
			out = append(out, i)
		}
	}
	return out
}

// addrOverlapping lists earlier lines whose addresses overlap r's (CIDR
// ranges nest or are disjoint: those containing r's, and those inside it),
// giving up (ok false) once that would be more than limit lines.
func (x *shadowIndex) addrOverlapping(r *hba.Rule, limit int) ([]int, bool) {
	ps, ok := keyPrefixes(r)
	if !ok {
		return nil, false
	}
	if x.sorted == nil {
		x.indexAddresses() // only files that need the union check pay for it
	}
	var out []int
	for _, p := range ps {
		lens := x.lens4
		if p.Addr().Is6() {
			lens = x.lens6
		}
		for n := range lens {
			if n <= p.Bits() {
				l := x.byPrefix[netip.PrefixFrom(p.Addr(), n).Masked()]
				out = append(out, l[:sort.SearchInts(l, x.next)]...)
			}
		}
		sp := prefixSpan(p)
		k := sort.Search(len(x.sorted), func(i int) bool { return !x.sorted[i].lo.Less(sp.lo) })
		for scanned := 0; k < len(x.sorted) && x.sorted[k].lo.Compare(sp.hi) <= 0; k++ {
			if scanned++; scanned > limit {
				return nil, false
			}
			if e := x.sorted[k]; e.i < x.next && e.bits > p.Bits() {
				out = append(out, e.i)
			}
		}
		if len(out) > limit {
			return nil, false
		}
	}
	return out, true
}

// keyPrefixes are a line's addresses as prefixes of one space: an IPv4
// network also as its IPv4-mapped IPv6 network, "all" as both /0.
func keyPrefixes(r *hba.Rule) ([]netip.Prefix, bool) {
	switch r.AddrKind {
	case hba.AddrAll:
		return []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.PrefixFrom(netip.IPv6Unspecified(), 0)}, true
	case hba.AddrCIDR:
		p, ok := r.Prefix()
		if !ok {
			return nil, false
		}
		if p.Addr().Is4() {
			return []netip.Prefix{p, netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)}, true
		}
		return []netip.Prefix{p}, true
	}
	return nil, false
}

type prefixEntry struct {
	lo      netip.Addr
	bits, i int
}

// indexAddresses prepares addrOverlapping for the whole file; x.next is
// the line being checked (only lines before it count).
func (x *shadowIndex) indexAddresses() {
	rules := x.rules
	x.byPrefix, x.lens4, x.lens6 = map[netip.Prefix][]int{}, map[int]bool{}, map[int]bool{}
	x.sorted = []prefixEntry{}
	for i := range rules {
		ps, _ := keyPrefixes(&rules[i])
		for _, p := range ps {
			x.byPrefix[p] = append(x.byPrefix[p], i)
			if p.Addr().Is4() {
				x.lens4[p.Bits()] = true
			} else {
				x.lens6[p.Bits()] = true
			}
			x.sorted = append(x.sorted, prefixEntry{p.Addr(), p.Bits(), i})
		}
	}
	sort.Slice(x.sorted, func(a, b int) bool { return x.sorted[a].lo.Less(x.sorted[b].lo) })
}

// classToken is a token of that class (keyOther: a name no line has).
func classToken(c string) hba.Token {
	switch {
	case c == keyOther:
		return hba.Token{Value: keyOther, Quoted: true}
	case strings.HasPrefix(c, "name:"):
		return hba.Token{Value: c[len("name:"):], Quoted: true}
	case strings.HasPrefix(c, "group:"):
		return hba.Token{Value: "+" + c[len("group:"):]}
	case strings.HasPrefix(c, "regex:"):
		return hba.Token{Value: c[len("regex:"):]}
	}
	return hba.Token{Value: c} // a database keyword
}

// probe is one connection r takes, as a one-connection line: the first
// line covering it must exist for r to be covered.
func probe(r *hba.Rule) (hba.Rule, bool) {
	p := hba.Rule{AddrKind: hba.AddrCIDR}
	switch k := kinds(r.Type); {
	case k&kindLocal != 0:
		p.Type, p.AddrKind = hba.Local, hba.AddrNone
	case k&kindSSL != 0:
		p.Type = hba.HostSSL
	default:
		p.Type = hba.HostGSSEnc
	}
	if p.Type != hba.Local {
		ss, ok := spans(r)
		if !ok {
			return p, false // covered through "every address": no one point
		}
		p.Addr, p.Bits = ss[0].lo, ss[0].lo.BitLen()
	}
	u, d := userClasses(r.Users)[0], dbClasses(r.Databases)[0]
	p.Users = []hba.Token{classToken(u)}
	p.Databases = []hba.Token{classToken(d)}
	return p, true
}
