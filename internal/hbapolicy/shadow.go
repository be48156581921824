package hbapolicy

import (
	"net/netip"
	"sort"

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
