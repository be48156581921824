// Package netfilter answers one question about a host's packet filter:
// what happens to a new TCP connection (its SYN) to a given address and
// port. It reads `nft -j list ruleset` and iptables-save/ip6tables-save,
// and evaluates the base chains on the prerouting and input hooks the way
// the kernel does: in priority order across tables and families, an
// accept ending only its own base chain, a drop or reject ending the
// packet. An expression it does not model makes the answer Unknown with
// the reason; it never guesses.
package netfilter

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go4.org/netipx"
)

// Kind is what the filter does with the packet.
type Kind string

const (
	Accept  Kind = "accept"
	Drop    Kind = "drop"
	Reject  Kind = "reject"
	Unknown Kind = "unknown"
)

// Packet is the first packet (SYN) of a new TCP connection.
type Packet struct {
	Src, Dst netip.Addr
	DPort    uint16
	// IIf is the interface it arrives on: "lo" when the source is the
	// host itself, a non-loopback name otherwise, or "" for some
	// non-loopback interface (a rule naming another interface then
	// makes the answer Unknown).
	IIf string
}

// Verdict is the answer and where it was decided.
type Verdict struct {
	Kind  Kind   `json:"verdict"`
	Where string `json:"where,omitempty"` // "inet filter input handle 7", "iptables-save:12", "ip filter INPUT policy"
	Why   string `json:"why,omitempty"`
	// Filtered says some rule or policy looked at the packet and could
	// have stopped it: false when no base chain exists on its path, or
	// every one it passed has an accept policy and no rule matching it.
	Filtered bool `json:"filtered"`
}

// Ruleset is a parsed packet filter.
type Ruleset struct {
	Source string // "nft", "iptables"
	chains []*chain
	base   []*chain // sorted by hook, then priority
	addrs  []netip.Prefix
	// xtTables are nft tables with iptables-nft (xt) expressions: their
	// truth is in iptables-save (see Combine).
	xtTables map[string]bool
}

type fam uint8

const (
	fam4 fam = 1
	fam6 fam = 2
	famB     = fam4 | fam6
)

func (f fam) has(a netip.Addr) bool {
	if a.Is4() {
		return f&fam4 != 0
	}
	return f&fam6 != 0
}

type chain struct {
	name   string // "inet filter input", "ip filter INPUT"
	cname  string // the chain's own name, for jumps
	table  string // "inet filter": the table key
	fam    fam
	hook   string // "prerouting", "input", "" (regular chain)
	prio   int
	policy Kind // Accept or Drop for base chains
	rules  []*rule
	where  string // where the chain is defined
	// bad names something about a base chain that is not modelled.
	bad string
}

type actKind int

const (
	actNone actKind = iota // counter, log: go on
	actAccept
	actDrop
	actReject
	actJump
	actGoto
	actReturn
	actUnknown
)

type rule struct {
	where  string
	conds  []cond
	act    actKind
	target string // jump/goto chain name
	tchain *chain
	why    string // for actUnknown: the statement not modelled
}

// tri is a three-valued match answer.
type tri int

const (
	no tri = iota
	yes
	maybe
)

type cond interface {
	match(p Packet) (tri, string)
}

// addrCond: ip/ip6 saddr/daddr (and iptables -s/-d). The family test is
// implicit: an ip6 match never matches an IPv4 packet, negated or not.
type addrCond struct {
	src bool
	f   fam
	set *netipx.IPSet
	neg bool
}

func (c addrCond) match(p Packet) (tri, string) {
	a := p.Dst
	if c.src {
		a = p.Src
	}
	if !c.f.has(a) {
		return no, ""
	}
	return boolTri(c.set.Contains(a) != c.neg), ""
}

type portRange struct{ lo, hi uint16 }

// portCond: tcp dport. A dport match on another protocol (udp dport)
// never matches a TCP packet: its l4proto dependency fails.
type portCond struct {
	tcp    bool
	ranges []portRange
	neg    bool
}

func (c portCond) match(p Packet) (tri, string) {
	if !c.tcp {
		return no, ""
	}
	in := false
	for _, r := range c.ranges {
		if p.DPort >= r.lo && p.DPort <= r.hi {
			in = true
		}
	}
	return boolTri(in != c.neg), ""
}

// boolCond is a match whose answer does not depend on the packet's
// addresses: l4proto tcp, ct state new, nfproto.
type famCond struct {
	f   fam
	neg bool
}

func (c famCond) match(p Packet) (tri, string) { return boolTri(c.f.has(p.Src) != c.neg), "" }

type constCond struct{ v bool }

func (c constCond) match(Packet) (tri, string) { return boolTri(c.v), "" }

// ifCond: iif/iifname (iptables -i); a trailing '*' (nft) or '+'
// (iptables) is a prefix match.
type ifCond struct {
	names []string
	neg   bool
}

func (c ifCond) match(p Packet) (tri, string) {
	if p.IIf == "" {
		// Some non-loopback interface: decided only when the rule
		// names loopback alone.
		for _, n := range c.names {
			if n != "lo" {
				return maybe, "the interface the connection arrives on (iifname " + strings.Join(c.names, ", ") + ")"
			}
		}
		return boolTri(c.neg), ""
	}
	in := false
	for _, n := range c.names {
		if pre, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(p.IIf, pre) {
			in = true
		} else if pre, ok := strings.CutSuffix(n, "+"); ok && strings.HasPrefix(p.IIf, pre) {
			in = true
		} else if n == p.IIf {
			in = true
		}
	}
	return boolTri(in != c.neg), ""
}

type unknownCond struct{ why string }

func (c unknownCond) match(Packet) (tri, string) { return maybe, c.why }

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

// finish links jumps, sorts the base chains and gathers the prefixes.
func (r *Ruleset) finish() error {
	byName := map[string]*chain{}
	for _, c := range r.chains {
		byName[c.table+"\x00"+c.cname] = c
	}
	var b netipx.IPSetBuilder
	for _, c := range r.chains {
		for _, ru := range c.rules {
			if ru.act == actJump || ru.act == actGoto {
				t := byName[c.table+"\x00"+ru.target]
				if t == nil {
					return fmt.Errorf("%s: jump to chain %q, which the table does not have", ru.where, ru.target)
				}
				ru.tchain = t
			}
			for _, cd := range ru.conds {
				if a, ok := cd.(addrCond); ok {
					for _, p := range a.set.Prefixes() {
						b.AddPrefix(p)
						r.addrs = append(r.addrs, p)
					}
				}
			}
		}
		if c.hook != "" {
			r.base = append(r.base, c)
		}
	}
	// The kernel registers a hook in front of those of equal priority
	// (nf_hook_entries_grow), and nft lists chains in the order they were
	// made: of two chains with one priority, the later listed runs first.
	for i, j := 0, len(r.base)-1; i < j; i, j = i+1, j-1 {
		r.base[i], r.base[j] = r.base[j], r.base[i]
	}
	order := map[string]int{"ingress": 0, "prerouting": 1, "input": 2}
	sort.SliceStable(r.base, func(i, j int) bool {
		a, b := r.base[i], r.base[j]
		if order[a.hook] != order[b.hook] {
			return order[a.hook] < order[b.hook]
		}
		return a.prio < b.prio
	})
	return nil
}

// Boundaries lists every address prefix the ruleset's address matches
// mention, each once: splitting the address space at these prefixes
// gives pieces every rule treats alike.
func (r *Ruleset) Boundaries() []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for _, p := range r.addrs {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Empty says the ruleset has no base chain that a packet to this host
// passes (no firewall at all).
func (r *Ruleset) Empty() bool { return r == nil || len(r.base) == 0 }

// Eval says what the filter does with p.
func (r *Ruleset) Eval(p Packet) Verdict {
	if r == nil {
		return Verdict{Kind: Accept, Why: "no ruleset"}
	}
	p.Src, p.Dst = p.Src.Unmap(), p.Dst.Unmap()
	if p.Src.Is4() != p.Dst.Is4() {
		return Verdict{Kind: Unknown, Why: "source and destination are of different families"}
	}
	last := Verdict{Kind: Accept, Why: "no base chain on the input path"}
	filtered := false
	for _, c := range r.base {
		if !c.fam.has(p.Src) {
			continue
		}
		if c.bad != "" && (len(c.rules) > 0 || c.policy != Accept) {
			return Verdict{Kind: Unknown, Where: c.where, Why: c.bad, Filtered: true}
		}
		v := r.run(c, p)
		filtered = filtered || v.Filtered
		v.Filtered = filtered
		if v.Kind != Accept {
			return v
		}
		last = v
	}
	if len(r.base) > 0 && last.Where == "" {
		last.Why = "no base chain of this family on the input path"
	}
	last.Filtered = filtered
	return last
}

type frame struct {
	c *chain
	i int
}

// run walks one base chain.
func (r *Ruleset) run(base *chain, p Packet) Verdict {
	cur, i := base, 0
	var stack []frame
	// Could a rule or the policy have stopped the packet on this path?
	filtered := base.policy != Accept
	for steps := 0; ; steps++ {
		if steps > 100000 || len(stack) > 64 {
			return Verdict{Kind: Unknown, Where: cur.where, Why: "jump loop or chains nested deeper than the kernel allows", Filtered: true}
		}
		if i >= len(cur.rules) {
			if len(stack) == 0 {
				return Verdict{Kind: base.policy, Where: base.name + " policy", Why: "end of base chain: policy " + string(base.policy), Filtered: filtered}
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cur, i = f.c, f.i
			continue
		}
		ru := cur.rules[i]
		i++
		m, why := yes, ""
		for _, cd := range ru.conds {
			t, w := cd.match(p)
			if t == no {
				m = no
				break
			}
			if t == maybe && m == yes {
				m, why = maybe, w
			}
		}
		if ru.act == actDrop || ru.act == actReject || ru.act == actUnknown {
			if m != no {
				filtered = true
			}
		}
		if m == no {
			continue
		}
		if m == maybe {
			return Verdict{Kind: Unknown, Where: ru.where, Why: "cannot tell whether the rule matches: " + why, Filtered: true}
		}
		switch ru.act {
		case actAccept:
			return Verdict{Kind: Accept, Where: ru.where, Why: "accepted by the rule", Filtered: filtered}
		case actDrop:
			return Verdict{Kind: Drop, Where: ru.where, Why: "dropped by the rule", Filtered: true}
		case actReject:
			return Verdict{Kind: Reject, Where: ru.where, Why: "rejected by the rule", Filtered: true}
		case actUnknown:
			return Verdict{Kind: Unknown, Where: ru.where, Why: "the rule matches, and its statement is not modelled: " + ru.why, Filtered: true}
		case actJump:
			stack = append(stack, frame{cur, i})
			cur, i = ru.tchain, 0
		case actGoto:
			cur, i = ru.tchain, 0
		case actReturn:
			if len(stack) == 0 {
				return Verdict{Kind: base.policy, Where: base.name + " policy", Why: "return from the base chain: policy " + string(base.policy), Filtered: filtered}
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cur, i = f.c, f.i
		}
	}
}

// Combine takes an nft ruleset and replaces its iptables-nft tables
// (whose xt expressions nft cannot show) with what iptables-save and
// ip6tables-save say of them. Either of ip4 and ip6 may be nil.
func Combine(nft, ip4, ip6 *Ruleset) *Ruleset {
	if nft == nil {
		out := &Ruleset{Source: "iptables"}
		for _, x := range []*Ruleset{ip4, ip6} {
			if x != nil {
				out.chains = append(out.chains, x.chains...)
			}
		}
		out.finish()
		return out
	}
	if len(nft.xtTables) == 0 {
		return nft
	}
	out := &Ruleset{Source: "nft+iptables"}
	for _, c := range nft.chains {
		if !nft.xtTables[c.table] {
			out.chains = append(out.chains, c)
		}
	}
	for _, x := range []*Ruleset{ip4, ip6} {
		if x == nil {
			continue
		}
		for _, c := range x.chains {
			if nft.xtTables[c.table] {
				out.chains = append(out.chains, c)
			}
		}
	}
	for t := range nft.xtTables {
		fam := strings.Fields(t)[0]
		if (fam == "ip" && ip4 == nil) || (fam == "ip6" && ip6 == nil) || (fam != "ip" && fam != "ip6") {
			// No iptables view of this table: keep nft's (its xt
			// expressions make the answers Unknown).
			for _, c := range nft.chains {
				if c.table == t {
					out.chains = append(out.chains, c)
				}
			}
		}
	}
	out.finish()
	return out
}
