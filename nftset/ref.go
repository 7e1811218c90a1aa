package nftset

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Family is an nftables table family that can hold address sets.
type Family uint8

// The families a knock set can live in. Their values are this package's
// own; the zero Family is invalid so that a Ref left empty is caught.
const (
	// FamilyIP is nft's "ip": IPv4 tables.
	FamilyIP Family = iota + 1
	// FamilyIP6 is nft's "ip6": IPv6 tables.
	FamilyIP6
	// FamilyInet is nft's "inet": tables for both IPv4 and IPv6.
	FamilyInet
)

// String returns the family's nft keyword.
func (f Family) String() string {
	switch f {
	case FamilyIP:
		return "ip"
	case FamilyIP6:
		return "ip6"
	case FamilyInet:
		return "inet"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// Ref names one set: its table's family, the table and the set.
type Ref struct {
	// Family is the table's family.
	Family Family
	// Table is the table's name.
	Table string
	// Set is the set's name within the table.
	Set string
}

// String returns the set as nft writes it, "inet fw knock4"; ParseRef
// reads it back.
func (r Ref) String() string {
	return r.Family.String() + " " + r.Table + " " + r.Set
}

// maxNameLen is the longest table or set name the kernel accepts: its
// name attributes hold 256 bytes with the terminating NUL.
const maxNameLen = 255

// ParseRef reads a set name the way nft writes it: family, table and set
// separated by blanks, such as "inet fw knock4" or "ip6 filter allow6".
// The family is required (nft would assume ip, which is a needless trap
// for the many rulesets with inet tables), and names must be nft's plain
// identifiers, as quoted names cannot be written in nft's words without
// quoting rules of their own.
func ParseRef(s string) (Ref, error) {
	f := strings.Fields(s)
	switch len(f) {
	case 3:
	case 2:
		w := strings.Join(f, " ")
		return Ref{}, fmt.Errorf("nft set %q: the family is missing: write \"ip %s\", \"ip6 %s\" or \"inet %s\"", s, w, w, w)
	default:
		return Ref{}, fmt.Errorf("nft set %q: want \"family table set\", such as \"inet fw knock4\"", s)
	}
	var r Ref
	switch f[0] {
	case "ip":
		r.Family = FamilyIP
	case "ip6":
		r.Family = FamilyIP6
	case "inet":
		r.Family = FamilyInet
	case "arp", "bridge", "netdev":
		// These are nft families too, but a door opens in the host's
		// ip, ip6 or inet filter; naming them is answered better here
		// than by a puzzling failure later.
		return Ref{}, fmt.Errorf("nft set %q: family %s is not supported for knock sets (want ip, ip6 or inet)", s, f[0])
	default:
		return Ref{}, fmt.Errorf("nft set %q: unknown family %q (want ip, ip6 or inet)", s, f[0])
	}
	r.Table, r.Set = f[1], f[2]
	if err := r.validate(); err != nil {
		return Ref{}, err
	}
	return r, nil
}

// validate checks a Ref, which may have been built by hand rather than by
// ParseRef, before it is sent to the kernel.
func (r Ref) validate() error {
	if r.Family < FamilyIP || r.Family > FamilyInet {
		return fmt.Errorf("nft set %q: invalid family", r)
	}
	if err := checkName(r.Table); err != nil {
		return fmt.Errorf("nft set %q: table name: %w", r, err)
	}
	if err := checkName(r.Set); err != nil {
		return fmt.Errorf("nft set %q: set name: %w", r, err)
	}
	return nil
}

// checkName accepts nft's unquoted identifiers: a letter, "_" or "."
// followed by letters, digits and "_./-". Anything else could not be
// written back as the same three words.
func checkName(n string) error {
	if n == "" {
		return errors.New("empty")
	}
	if len(n) > maxNameLen {
		return fmt.Errorf("%d bytes long, the kernel allows %d", len(n), maxNameLen)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '.':
		case i > 0 && ('0' <= c && c <= '9' || c == '/' || c == '-'):
		default:
			_, size := utf8.DecodeRuneInString(n[i:])
			return fmt.Errorf("%q at byte %d: names are letters, digits and \"_./-\", starting with a letter, \"_\" or \".\"", n[i:i+size], i)
		}
	}
	return nil
}
