package netfilter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// ParseNFT reads the output of `nft -j list ruleset`. Errors name the
// line and column of bad JSON, or the object (by its index in the
// "nftables" array) that does not fit.
func ParseNFT(data []byte) (*Ruleset, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("nft JSON: %s", jsonErr(data, err))
	}
	if doc.Nftables == nil {
		return nil, errors.New("nft JSON: no \"nftables\" array (not the output of nft -j list ruleset)")
	}
	r := &Ruleset{Source: "nft", xtTables: map[string]bool{}}
	chains := map[string]*chain{}
	sets := map[string]*nftSet{}
	type pending struct {
		i   int
		raw json.RawMessage
	}
	var rules []pending
	for i, obj := range doc.Nftables {
		for k, raw := range obj {
			switch k {
			case "table", "metainfo", "map", "flowtable", "counter", "quota", "ct helper", "limit", "element", "ct timeout", "ct expectation", "secmark", "synproxy":
			case "chain":
				var c struct {
					Family, Table, Name, Type, Hook, Policy, Dev string
					Prio                                         *int
				}
				if err := json.Unmarshal(raw, &c); err != nil {
					return nil, fmt.Errorf("nft JSON: object %d (chain): %v", i, err)
				}
				f, ok := families[c.Family]
				tkey := c.Family + " " + c.Table
				ch := &chain{name: tkey + " " + c.Name, cname: c.Name, table: tkey, fam: f, where: "chain " + tkey + " " + c.Name}
				if c.Hook != "" {
					ch.hook, ch.policy = c.Hook, Accept
					if c.Prio != nil {
						ch.prio = *c.Prio
					}
					if c.Policy == "drop" {
						ch.policy = Drop
					}
					switch {
					case c.Hook != "prerouting" && c.Hook != "input" && c.Hook != "ingress":
						ch.hook = "" // output, forward, postrouting: a connection to this host never passes them
					case !ok:
						if c.Family == "netdev" || c.Family == "bridge" {
							ch.fam = famB
							ch.bad = c.Family + " " + c.Hook + " chains (device-bound filtering before the IP layer) are not modelled"
						} else {
							ch.hook = "" // arp: no TCP
						}
					case c.Hook == "ingress":
						ch.bad = c.Family + " ingress chains (device-bound) are not modelled"
					case c.Type == "nat" && c.Hook == "input":
						ch.hook = "" // source NAT on input: decides no verdict for a SYN to this host
					}
				}
				chains[tkey+"\x00"+c.Name] = ch
				r.chains = append(r.chains, ch)
			case "set":
				var s struct {
					Family, Table, Name string
					Type                json.RawMessage
					Elem                []json.RawMessage
				}
				if err := json.Unmarshal(raw, &s); err != nil {
					return nil, fmt.Errorf("nft JSON: object %d (set): %v", i, err)
				}
				ns := &nftSet{}
				var typ string
				if json.Unmarshal(s.Type, &typ) != nil {
					ns.bad = "set @" + s.Name + " has a concatenated type"
				}
				for _, e := range s.Elem {
					ns.elems = append(ns.elems, e)
				}
				ns.typ = typ
				sets[s.Family+" "+s.Table+"\x00"+s.Name] = ns
			case "rule":
				rules = append(rules, pending{i, raw})
			default:
				return nil, fmt.Errorf("nft JSON: object %d: unknown kind %q", i, k)
			}
		}
	}
	for _, p := range rules {
		var ru struct {
			Family, Table, Chain string
			Handle               int
			Expr                 []map[string]json.RawMessage
		}
		if err := json.Unmarshal(p.raw, &ru); err != nil {
			return nil, fmt.Errorf("nft JSON: object %d (rule): %v", p.i, err)
		}
		tkey := ru.Family + " " + ru.Table
		ch := chains[tkey+"\x00"+ru.Chain]
		if ch == nil {
			return nil, fmt.Errorf("nft JSON: object %d: rule in chain %s %s, which is not listed", p.i, tkey, ru.Chain)
		}
		x := &rule{where: fmt.Sprintf("%s %s handle %d", tkey, ru.Chain, ru.Handle)}
		lookup := func(name string) *nftSet { return sets[tkey+"\x00"+name] }
		for _, e := range ru.Expr {
			for k, v := range e {
				if k == "xt" {
					r.xtTables[tkey] = true
				}
				if x.act != actNone {
					// A statement after the verdict never runs.
					continue
				}
				if err := nftExpr(x, k, v, ch.fam, lookup); err != nil {
					return nil, fmt.Errorf("nft JSON: object %d (rule %s): %v", p.i, x.where, err)
				}
			}
		}
		ch.rules = append(ch.rules, x)
	}
	if err := r.finish(); err != nil {
		return nil, fmt.Errorf("nft JSON: %v", err)
	}
	return r, nil
}

var families = map[string]fam{"ip": fam4, "ip6": fam6, "inet": famB}

type nftSet struct {
	typ   string
	elems []json.RawMessage
	bad   string
}

func jsonErr(data []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return err.Error()
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

// nftExpr adds one expression of a rule: a match (a condition), or a
// statement (a verdict, or a no-op such as counter and log).
func nftExpr(x *rule, k string, v json.RawMessage, f fam, lookup func(string) *nftSet) error {
	switch k {
	case "counter", "log", "comment", "continue", "notrack_off":
		return nil
	case "accept":
		x.act = actAccept
	case "drop":
		x.act = actDrop
	case "reject":
		x.act = actReject
		// nft lists `reject with icmp ...` in an inet table without the
		// meta nfproto ipv4 it implies (and icmpv6 without ipv6); the
		// kernel's rule still has the match.
		var rj struct{ Type string }
		json.Unmarshal(v, &rj)
		switch rj.Type {
		case "icmp":
			x.conds = append(x.conds, famCond{f: fam4})
		case "icmpv6":
			x.conds = append(x.conds, famCond{f: fam6})
		}
	case "return":
		x.act = actReturn
	case "jump", "goto":
		var t struct{ Target string }
		if err := json.Unmarshal(v, &t); err != nil || t.Target == "" {
			return fmt.Errorf("%s without a target", k)
		}
		x.act, x.target = actJump, t.Target
		if k == "goto" {
			x.act = actGoto
		}
	case "match":
		var m struct {
			Op          string
			Left, Right json.RawMessage
		}
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("match: %v", err)
		}
		x.conds = append(x.conds, nftMatch(m.Op, m.Left, m.Right, f, lookup))
	default:
		// A statement that changes the packet or its fate in a way
		// not modelled (limit, queue, nat, meta set, vmap, xt ...).
		x.conds = append(x.conds, unknownCond{why: "expression " + strconv.Quote(k) + " " + short(v)})
		if k == "xt" || k == "queue" || k == "vmap" || k == "dnat" || k == "redirect" || k == "tproxy" || k == "notrack" || k == "synproxy" {
			x.act, x.why = actUnknown, k+" "+short(v)
		}
	}
	return nil
}

func short(v json.RawMessage) string {
	s := string(v)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// nftMatch turns one match into a condition; what it cannot read
// becomes an unknownCond naming the expression.
func nftMatch(op string, left, right json.RawMessage, f fam, lookup func(string) *nftSet) cond {
	what := short(left) + " " + op + " " + short(right)
	unk := unknownCond{why: "match " + what}
	neg := false
	switch op {
	case "==", "in":
	case "!=":
		neg = true
	default:
		return unk
	}
	var l struct {
		Payload *struct{ Protocol, Field string }
		Meta    *struct{ Key string }
		Ct      *struct{ Key string }
	}
	if json.Unmarshal(left, &l) != nil {
		return unk
	}
	switch {
	case l.Payload != nil:
		switch pr, fd := l.Payload.Protocol, l.Payload.Field; {
		case (pr == "ip" || pr == "ip6") && (fd == "saddr" || fd == "daddr"):
			af := fam4
			if pr == "ip6" {
				af = fam6
			}
			set, err := addrSet(right, lookup)
			if err != nil {
				return unknownCond{why: "match " + what + ": " + err.Error()}
			}
			return addrCond{src: fd == "saddr", f: af & f, set: set, neg: neg}
		case (pr == "tcp" || pr == "th") && fd == "dport":
			rs, err := portSet(right, lookup)
			if err != nil {
				return unknownCond{why: "match " + what + ": " + err.Error()}
			}
			return portCond{tcp: true, ranges: rs, neg: neg}
		case (pr == "udp" || pr == "sctp" || pr == "dccp" || pr == "udplite") && fd == "dport":
			return constCond{false} // the l4proto dependency fails for TCP
		case (pr == "ip" && fd == "protocol") || (pr == "ip6" && fd == "nexthdr"):
			af := fam4
			if pr == "ip6" {
				af = fam6
			}
			t, ok := protoIsTCP(right, lookup)
			if !ok {
				return unk
			}
			return andFam(af&f, t != neg)
		}
	case l.Meta != nil:
		switch l.Meta.Key {
		case "l4proto":
			t, ok := protoIsTCP(right, lookup)
			if !ok {
				return unk
			}
			return constCond{t != neg}
		case "nfproto", "protocol":
			vals, ok := strings1(right, lookup)
			if !ok {
				return unk
			}
			var ff fam
			for _, s := range vals {
				switch s {
				case "ipv4", "ip", "2", "0x0800", "2048":
					ff |= fam4
				case "ipv6", "ip6", "10", "0x86dd", "34525":
					ff |= fam6
				}
			}
			return famCond{f: ff, neg: neg}
		case "iifname", "iif":
			vals, ok := strings1(right, lookup)
			if !ok {
				return unk
			}
			return ifCond{names: vals, neg: neg}
		}
	case l.Ct != nil && l.Ct.Key == "state":
		vals, ok := strings1(right, lookup)
		if !ok {
			return unk
		}
		in := false
		for _, s := range vals {
			if s == "new" {
				in = true
			}
		}
		// A SYN of a new connection is in state new, never
		// established, related, invalid or untracked.
		return constCond{in != neg}
	}
	return unk
}

func andFam(f fam, ok bool) cond {
	if !ok {
		return constCond{false}
	}
	return famCond{f: f}
}

// elems lists a right-hand side's values: a literal, {"set": [...]}, or
// "@name" for a named set.
func elems(right json.RawMessage, lookup func(string) *nftSet) ([]json.RawMessage, error) {
	var s string
	if json.Unmarshal(right, &s) == nil && strings.HasPrefix(s, "@") {
		ns := lookup(s[1:])
		if ns == nil {
			return nil, fmt.Errorf("set %s is not listed", s)
		}
		if ns.bad != "" {
			return nil, errors.New(ns.bad)
		}
		return ns.elems, nil
	}
	var anon struct{ Set []json.RawMessage }
	if json.Unmarshal(right, &anon) == nil && anon.Set != nil {
		return anon.Set, nil
	}
	return []json.RawMessage{right}, nil
}

// unwrap removes an element's {"elem": {"val": ...}} wrapper (elements
// with timeouts or comments).
func unwrap(e json.RawMessage) json.RawMessage {
	var w struct {
		Elem *struct{ Val json.RawMessage }
	}
	if json.Unmarshal(e, &w) == nil && w.Elem != nil && w.Elem.Val != nil {
		return w.Elem.Val
	}
	return e
}

func addrSet(right json.RawMessage, lookup func(string) *nftSet) (*netipx.IPSet, error) {
	es, err := elems(right, lookup)
	if err != nil {
		return nil, err
	}
	var b netipx.IPSetBuilder
	for _, e := range es {
		e = unwrap(e)
		var s string
		var pf struct {
			Prefix *struct {
				Addr string
				Len  int
			}
			Range []string
		}
		switch {
		case json.Unmarshal(e, &s) == nil:
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("address %q", s)
			}
			b.Add(a.Unmap())
		case json.Unmarshal(e, &pf) == nil && pf.Prefix != nil:
			a, err := netip.ParseAddr(pf.Prefix.Addr)
			if err != nil || pf.Prefix.Len < 0 || pf.Prefix.Len > a.BitLen() {
				return nil, fmt.Errorf("prefix %s", short(e))
			}
			b.AddPrefix(netip.PrefixFrom(a, pf.Prefix.Len).Masked())
		case pf.Range != nil && len(pf.Range) == 2:
			lo, e1 := netip.ParseAddr(pf.Range[0])
			hi, e2 := netip.ParseAddr(pf.Range[1])
			rg := netipx.IPRangeFrom(lo, hi)
			if e1 != nil || e2 != nil || !rg.IsValid() {
				return nil, fmt.Errorf("range %s", short(e))
			}
			b.AddRange(rg)
		default:
			return nil, fmt.Errorf("address element %s", short(e))
		}
	}
	return b.IPSet()
}

func portSet(right json.RawMessage, lookup func(string) *nftSet) ([]portRange, error) {
	es, err := elems(right, lookup)
	if err != nil {
		return nil, err
	}
	var out []portRange
	for _, e := range es {
		e = unwrap(e)
		var n uint16
		var rg struct{ Range []uint16 }
		switch {
		case json.Unmarshal(e, &n) == nil:
			out = append(out, portRange{n, n})
		case json.Unmarshal(e, &rg) == nil && len(rg.Range) == 2:
			out = append(out, portRange{rg.Range[0], rg.Range[1]})
		default:
			return nil, fmt.Errorf("port element %s", short(e))
		}
	}
	return out, nil
}

// strings1 reads a right-hand side of names or numbers (as text).
func strings1(right json.RawMessage, lookup func(string) *nftSet) ([]string, bool) {
	es, err := elems(right, lookup)
	if err != nil {
		return nil, false
	}
	var out []string
	for _, e := range es {
		e = unwrap(e)
		var s string
		var n json.Number
		var l []string
		switch {
		case json.Unmarshal(e, &s) == nil:
			out = append(out, s)
		case json.Unmarshal(e, &n) == nil:
			out = append(out, n.String())
		case json.Unmarshal(e, &l) == nil: // ct state {"established","related"} as a plain list
			out = append(out, l...)
		default:
			return nil, false
		}
	}
	return out, true
}

func protoIsTCP(right json.RawMessage, lookup func(string) *nftSet) (bool, bool) {
	vals, ok := strings1(right, lookup)
	if !ok {
		return false, false
	}
	for _, v := range vals {
		if v == "tcp" || v == "6" {
			return true, true
		}
	}
	return false, true
}
