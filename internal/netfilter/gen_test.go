package netfilter

import (
	"fmt"
	"math/rand"
	"strings"
)

// Random rulesets for the oracle test, drawn from values around the
// netnstest addresses so that matches split the clients.
var (
	gen4   = []string{"192.0.2.0/25", "192.0.2.128/25", "192.0.2.64/26", "198.51.100.0/24", "198.51.100.128/25", "192.0.2.77", "192.0.2.10", "10.0.0.0/8", "192.0.2.0/24"}
	gen4r  = []string{"192.0.2.10-192.0.2.80", "198.51.100.100-198.51.100.200"}
	gen4d  = []string{"192.0.2.1", "198.51.100.0/24", "198.51.100.1"}
	gen6   = []string{"2001:db8:1::/64", "2001:db8:1::8000:0/97", "2001:db8:1::10", "2001:db8:2::/48"}
	gen6r  = []string{"2001:db8:1::1-2001:db8:1::20"}
	gen6d  = []string{"2001:db8:1::1", "2001:db8:1::/64"}
	genIfs = []string{"lo", "eth0", "eth*"}
)

type gen struct {
	r     *rand.Rand
	ports []int // the ports listened on
}

func (g *gen) pick(l []string) string { return l[g.r.Intn(len(l))] }
func (g *gen) chance(n int) bool      { return g.r.Intn(n) == 0 }

func (g *gen) port() string {
	p := g.ports[g.r.Intn(len(g.ports))]
	switch g.r.Intn(4) {
	case 0:
		return fmt.Sprintf("%d-%d", p-g.r.Intn(3), p+g.r.Intn(3))
	case 1:
		return fmt.Sprintf("{ %d, %d }", p, g.ports[g.r.Intn(len(g.ports))]+100)
	}
	return fmt.Sprint(p)
}

// nft writes one nft -f script.
func (g *gen) nft() string {
	var b strings.Builder
	b.WriteString("flush ruleset\n")
	for t := 0; t < 1+g.r.Intn(3); t++ {
		fam := []string{"inet", "ip", "ip6"}[g.r.Intn(3)]
		fmt.Fprintf(&b, "table %s t%d {\n", fam, t)
		has4, has6 := fam != "ip6", fam != "ip"
		if has4 {
			fmt.Fprintf(&b, "  set a4 { type ipv4_addr; flags interval; auto-merge; elements = { %s, %s } }\n", g.pick(gen4), g.pick(gen4r))
		}
		if has6 {
			fmt.Fprintf(&b, "  set a6 { type ipv6_addr; flags interval; auto-merge; elements = { %s, %s } }\n", g.pick(gen6), g.pick(gen6r))
		}
		fmt.Fprintf(&b, "  set ps { type inet_service; flags interval; auto-merge; elements = { %d, %d-%d } }\n", g.ports[g.r.Intn(len(g.ports))], g.ports[0]-1, g.ports[0]+1)
		nreg := g.r.Intn(3)
		nbase := 1 + g.r.Intn(2)
		for c := 0; c < nbase+nreg; c++ {
			base := c < nbase
			if base {
				pol := "accept"
				if g.chance(3) {
					pol = "drop"
				}
				fmt.Fprintf(&b, "  chain b%d {\n    type filter hook input priority %d; policy %s;\n", c, []int{-10, 0, 0, 5, 10}[g.r.Intn(5)], pol)
				if has6 {
					// Neighbour discovery must pass, or no IPv6 SYN arrives.
					b.WriteString("    meta l4proto ipv6-icmp accept\n")
				}
			} else {
				fmt.Fprintf(&b, "  chain r%d {\n", c)
			}
			for n := 0; n < g.r.Intn(5); n++ {
				b.WriteString("    " + g.nftRule(has4, has6, c, nbase, nbase+nreg) + "\n")
			}
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func (g *gen) nftRule(has4, has6 bool, c, nbase, nchains int) string {
	var m []string
	neg := func() string {
		if g.chance(3) {
			return "!= "
		}
		return ""
	}
	// nft refuses ip and ip6 matches (or nfproto) that contradict
	// each other in one rule: a rule takes one family.
	use4 := has4 && (!has6 || g.chance(2))
	use6 := has6 && !use4
	for k := 0; k < g.r.Intn(4); k++ {
		switch g.r.Intn(9) {
		case 0, 1:
			if use4 {
				switch g.r.Intn(4) {
				case 0:
					m = append(m, "ip saddr "+neg()+"@a4")
				case 1:
					m = append(m, "ip saddr "+neg()+g.pick(gen4r))
				case 2:
					m = append(m, fmt.Sprintf("ip saddr %s{ %s, %s }", neg(), g.pick(gen4), g.pick(gen4)))
				default:
					m = append(m, "ip saddr "+neg()+g.pick(gen4))
				}
			}
		case 2:
			if use6 {
				switch g.r.Intn(3) {
				case 0:
					m = append(m, "ip6 saddr "+neg()+"@a6")
				case 1:
					m = append(m, "ip6 saddr "+neg()+g.pick(gen6r))
				default:
					m = append(m, "ip6 saddr "+neg()+g.pick(gen6))
				}
			}
		case 3:
			if use4 {
				m = append(m, "ip daddr "+neg()+g.pick(gen4d))
			} else if use6 {
				m = append(m, "ip6 daddr "+neg()+g.pick(gen6d))
			}
		case 4, 5:
			if g.chance(4) {
				m = append(m, "tcp dport "+neg()+"@ps")
			} else {
				m = append(m, "tcp dport "+neg()+g.port())
			}
		case 6:
			if g.chance(2) {
				m = append(m, "meta l4proto tcp")
			} else {
				// Not TCP: nft refuses a tcp match beside it.
				m = []string{[]string{"udp dport 5432", "meta l4proto != tcp"}[g.r.Intn(2)]}
				k = 99
			}
			if has4 && has6 {
				m = append(m, map[bool]string{true: "meta nfproto ipv4", false: "meta nfproto ipv6"}[use4])
			}
		case 7:
			m = append(m, fmt.Sprintf("iifname %s%q", neg(), g.pick(genIfs)))
		case 8:
			m = append(m, []string{"ct state new", "ct state established,related", "ct state != established", "ct state { new, established }"}[g.r.Intn(4)])
		}
	}
	if g.chance(3) {
		m = append(m, "counter")
	}
	var v string
	switch k := g.r.Intn(10); {
	case k < 3:
		v = "accept"
	case k < 5:
		v = "drop"
	case k < 7:
		v = []string{"reject", "reject with tcp reset", "reject with icmpx type admin-prohibited"}[g.r.Intn(3)]
		if strings.Contains(v, "icmpx") && !(has4 && has6) {
			v = "reject" // icmpx is for inet tables only
		}
	case k == 7 && c+1 < nchains && c+1 >= nbase-0:
		// Jumps go forward only, to regular chains: nft refuses loops.
		t := max(c+1, nbase) + g.r.Intn(nchains-max(c+1, nbase))
		v = fmt.Sprintf("%s r%d", []string{"jump", "goto"}[g.r.Intn(2)], t)
	case k == 8:
		v = "return"
	default:
		v = `log prefix "t "`
	}
	if strings.Contains(v, "tcp reset") && len(m) > 0 && (m[0] == "udp dport 5432" || m[0] == "meta l4proto != tcp") {
		v = "reject"
	}
	if strings.Contains(v, "tcp reset") {
		m = append(m, "meta l4proto tcp")
	}
	return strings.TrimSpace(strings.Join(m, " ") + " " + v)
}

// iptables writes one iptables-restore (v6 false) or ip6tables-restore
// input.
func (g *gen) iptables(v6 bool) string {
	src, srcD := gen4, gen4d
	if v6 {
		src, srcD = gen6, gen6d
	}
	var b strings.Builder
	tables := []string{"filter"}
	if g.chance(3) {
		tables = append(tables, "mangle")
	}
	if g.chance(4) {
		tables = append(tables, "raw")
	}
	for _, table := range tables {
		fmt.Fprintf(&b, "*%s\n", table)
		hook := "INPUT"
		if table == "raw" {
			hook = "PREROUTING"
		}
		pol := "ACCEPT"
		if g.chance(3) {
			pol = "DROP"
		}
		fmt.Fprintf(&b, ":%s %s [0:0]\n", hook, pol)
		nreg := g.r.Intn(3)
		// Odd user chains are named in capitals, as pgaegis's own
		// PGAEGIS-PG and Docker's DOCKER-USER are: a -j to them is a
		// jump, not a target extension.
		uname := func(c int) string {
			if c%2 == 1 {
				return fmt.Sprintf("PG-U%d", c)
			}
			return fmt.Sprintf("u%d", c)
		}
		for c := 0; c < nreg; c++ {
			fmt.Fprintf(&b, ":%s - [0:0]\n", uname(c))
		}
		if v6 {
			fmt.Fprintf(&b, "-A %s -p ipv6-icmp -j ACCEPT\n", hook)
		}
		for c := -1; c < nreg; c++ {
			name := hook
			if c >= 0 {
				name = uname(c)
			}
			for n := 0; n < g.r.Intn(5); n++ {
				var m []string
				neg := func() string {
					if g.chance(3) {
						return "! "
					}
					return ""
				}
				// iptables takes each of -s, -d, -p, -i once per rule.
				used := map[int]bool{}
				proto := ""
				for k := 0; k < g.r.Intn(4); k++ {
					kind := g.r.Intn(7)
					if kind == 1 {
						kind = 0
					}
					if used[kind] {
						continue
					}
					used[kind] = true
					switch kind {
					case 0:
						if g.chance(4) && !used[2] {
							// iptables refuses ! -d beside a list of sources.
							used[2] = true
							m = append(m, "-s "+g.pick(src)+","+g.pick(src))
						} else {
							m = append(m, neg()+"-s "+g.pick(src))
						}
					case 2:
						m = append(m, neg()+"-d "+g.pick(srcD))
					case 3:
						if proto == "udp" {
							continue
						}
						pr := ""
						if proto == "" {
							pr, proto = "-p tcp ", "tcp"
						}
						p := g.ports[g.r.Intn(len(g.ports))]
						switch g.r.Intn(3) {
						case 0:
							m = append(m, fmt.Sprintf("%s-m tcp %s--dport %d", pr, neg(), p))
						case 1:
							m = append(m, fmt.Sprintf("%s-m tcp --dport %d:%d", pr, p-1, p+g.r.Intn(2)))
						default:
							m = append(m, fmt.Sprintf("%s-m multiport %s--dports %d,%d:%d", pr, neg(), p, p+50, p+60))
						}
					case 4:
						m = append(m, neg()+"-i "+[]string{"lo", "eth0", "eth+"}[g.r.Intn(3)])
					case 5:
						m = append(m, []string{"-m conntrack --ctstate NEW", "-m conntrack --ctstate RELATED,ESTABLISHED", "-m state --state NEW", "-m conntrack ! --ctstate ESTABLISHED"}[g.r.Intn(4)])
					case 6:
						m = append(m, `-m comment --comment "a rule"`)
						if proto == "" && g.chance(2) {
							m, proto = append(m, "-p udp"), "udp"
						}
					}
				}
				var v string
				switch k := g.r.Intn(10); {
				case k < 3:
					v = "-j ACCEPT"
				case k < 5:
					v = "-j DROP"
				case k < 7 && table == "filter":
					v = "-j REJECT"
					if proto != "udp" && g.chance(2) {
						v = "-j REJECT --reject-with tcp-reset"
						if proto == "" {
							v = "-p tcp " + v
						}
					}
				case k == 7 && c+1 < nreg:
					v = fmt.Sprintf("%s %s", []string{"-j", "-g"}[g.r.Intn(2)], uname(c+1+g.r.Intn(nreg-c-1)))
				case k == 8:
					v = "-j RETURN"
				default:
					v = `-j LOG --log-prefix "t "`
				}
				fmt.Fprintf(&b, "-A %s %s %s\n", name, strings.Join(m, " "), v)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
