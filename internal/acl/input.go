package acl

import (
	"fmt"
	"strings"
)

// Letters reports the privilege letters a major's aclitem knows, in the
// order it prints them: SET and ALTER SYSTEM (s, A) from 15, MAINTAIN (m)
// from 17. major 0 means the newest.
func Letters(major int) string {
	switch {
	case major > 0 && major < 15:
		return "arwdDxtXUCTc"
	case major > 0 && major < 17:
		return "arwdDxtXUCTcsA"
	}
	return privOrder
}

// maxName is the longest role name the server stores (NAMEDATALEN - 1).
const maxName = 63

func isSpaceC(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isAlnumC(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// getid reads a role name as the server's aclitem input does: blanks
// skipped, then letters, digits, underscores and double-quoted parts
// ("" is a quote; an unterminated quote runs to the end), then blanks.
func getid(s string, i int) (string, int, error) {
	for i < len(s) && isSpaceC(s[i]) {
		i++
	}
	var b strings.Builder
	inQuotes := false
	// Bytes of multibyte characters count as name characters: every
	// major here takes an unquoted ünïcödé (and prints it quoted).
	for i < len(s) && (isAlnumC(s[i]) || s[i] == '_' || s[i] >= 0x80 || s[i] == '"' || inQuotes) {
		c := s[i]
		if c == '"' {
			if i+1 >= len(s) || s[i+1] != '"' {
				inQuotes = !inQuotes
				i++
				continue
			}
			i++ // a doubled quote is one
		}
		if b.Len() >= maxName {
			return "", i, fmt.Errorf("identifier too long")
		}
		b.WriteByte(c)
		i++
	}
	// An unterminated quote is not an error to the server: the name
	// ends with the text.
	for i < len(s) && isSpaceC(s[i]) {
		i++
	}
	return b.String(), i, nil
}

// ParseInput parses an aclitem literal the way a major's server reads
// '...'::aclitem: what it refuses is an error (a letter that major does
// not know, such as m before 17, unquoted punctuation in a name, text
// after the grantor). A literal without "/grantor" is taken with the
// bootstrap superuser as grantor, returned as an empty Grantor. Whether
// the roles exist is not checked.
func ParseInput(s string, major int) (Item, error) {
	var it Item
	grantee, i, err := getid(s, 0)
	if err != nil {
		return it, fmt.Errorf("aclitem %q: %v", s, err)
	}
	if i >= len(s) || s[i] != '=' {
		return it, fmt.Errorf("aclitem %q: missing \"=\" sign", s)
	}
	it.Grantee = grantee
	if grantee == "" {
		it.Grantee = Public
	}
	letters := Letters(major)
	held := map[byte]bool{}
	option := map[byte]bool{}
	var last byte
	for i++; i < len(s) && (isAlnumC(s[i]) && !(s[i] >= '0' && s[i] <= '9') || s[i] == '*'); i++ {
		c := s[i]
		if c == '*' {
			if last != 0 {
				option[last] = true
			}
			continue
		}
		if strings.IndexByte(letters, c) < 0 {
			return it, fmt.Errorf("aclitem %q: invalid mode character: must be one of %q", s, letters)
		}
		held[c], last = true, c
	}
	// No blanks before the "/": the server then takes no grantor and
	// finds the rest to be garbage.
	if i < len(s) && s[i] == '/' {
		grantor, j, err := getid(s, i+1)
		if err != nil {
			return it, fmt.Errorf("aclitem %q: %v", s, err)
		}
		if grantor == "" {
			return it, fmt.Errorf("aclitem %q: a name must follow the \"/\" sign", s)
		}
		it.Grantor, i = grantor, j
	}
	for i < len(s) && isSpaceC(s[i]) {
		i++
	}
	if i != len(s) {
		return it, fmt.Errorf("aclitem %q: extra garbage at the end of the ACL specification", s)
	}
	for k := 0; k < len(privOrder); k++ {
		if c := privOrder[k]; held[c] {
			it.Grants = append(it.Grants, Grant{Privilege: privNames[c], GrantOption: option[c]})
		}
	}
	return it, nil
}

// Object kinds, as acldefault() names them.
const (
	KindColumn        = 'c'
	KindRelation      = 'r'
	KindSequence      = 's'
	KindDatabase      = 'd'
	KindFunction      = 'f'
	KindLanguage      = 'l'
	KindLargeObject   = 'L'
	KindSchema        = 'n'
	KindParameter     = 'p'
	KindTablespace    = 't'
	KindFDW           = 'F'
	KindForeignServer = 'S'
	KindType          = 'T'
)

// Kinds lists the object kinds a major's acldefault() knows.
func Kinds(major int) string {
	if major > 0 && major < 15 {
		return "crsdflLntFST"
	}
	return "crsdflLnptFST"
}

// Default is acldefault(): the privileges an object of a kind has while
// its ACL is NULL, owned by owner, on a major. PUBLIC comes first, as
// the server lists it; an owner with nothing (a column) gives no item.
func Default(kind byte, owner string, major int) ([]Item, error) {
	if strings.IndexByte(Kinds(major), kind) < 0 {
		return nil, fmt.Errorf("unrecognized object type abbreviation: %c", kind)
	}
	var ownerPrivs, publicPrivs string
	switch kind {
	case KindColumn:
	case KindRelation:
		ownerPrivs = "arwdDxt"
		if major == 0 || major >= 17 {
			ownerPrivs += "m"
		}
	case KindSequence:
		ownerPrivs = "rwU"
	case KindDatabase:
		ownerPrivs, publicPrivs = "CTc", "Tc"
	case KindFunction:
		ownerPrivs, publicPrivs = "X", "X"
	case KindLanguage:
		ownerPrivs, publicPrivs = "U", "U"
	case KindLargeObject:
		ownerPrivs = "rw"
	case KindSchema:
		ownerPrivs = "UC"
	case KindParameter:
		ownerPrivs = "sA"
	case KindTablespace:
		ownerPrivs = "C"
	case KindFDW, KindForeignServer:
		ownerPrivs = "U"
	case KindType:
		ownerPrivs, publicPrivs = "U", "U"
	}
	grants := func(letters string) []Grant {
		var g []Grant
		for i := 0; i < len(letters); i++ {
			g = append(g, Grant{Privilege: privNames[letters[i]]})
		}
		return g
	}
	var out []Item
	if publicPrivs != "" {
		out = append(out, Item{Grantee: Public, Grantor: owner, Grants: grants(publicPrivs)})
	}
	if ownerPrivs != "" {
		out = append(out, Item{Grantee: owner, Grantor: owner, Grants: grants(ownerPrivs)})
	}
	return out, nil
}
