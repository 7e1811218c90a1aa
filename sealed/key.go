package sealed

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// KeySize is the length of a sealed-door key in bytes.
const KeySize = 32

// HKDF info strings: each sub-key is bound to its use, so the AES key and
// the source-tag key are independent even though both come from one file.
// They are part of the format (docs/sealed.md); changing them is a new
// version. No salt is used: the key is already uniformly random, which is
// all HKDF's extract step needs, and RFC 5869 then salts with zeros.
const (
	InfoAES = "portknock sealed v1 aes"
	InfoTag = "portknock sealed v1 tag"
)

// Key is a shared secret between a client and a daemon: 32 random bytes.
// It formats as "sealed.Key(redacted)" with fmt and slog, so a key that
// ends up in a log line or an error message does not leak; the bytes are
// reached only by indexing or MarshalText. (fmt cannot call methods on
// unexported struct fields: a Key kept in one prints raw with %v.)
type Key [KeySize]byte

// keyHeader starts every key file written by MarshalText. ParseKey skips
// it like any comment.
const keyHeader = "# portknock sealed-door key: 32 random bytes in base64.\n" +
	"# Keep it secret (mode 0600); client and daemon must hold the same key.\n"

// NewKey reads a fresh key from r, or from crypto/rand when r is nil.
func NewKey(r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	var k Key
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return Key{}, fmt.Errorf("sealed: reading %d random bytes for a key: %w", KeySize, err)
	}
	if k == (Key{}) {
		return Key{}, errors.New("sealed: the random source gave an all-zero key")
	}
	return k, nil
}

// ParseKey reads a key file's contents: one line of standard base64
// holding 32 bytes, with any number of blank lines and lines starting with
// '#' around it. Errors name the line but never echo key material.
func ParseKey(data []byte) (Key, error) {
	var (
		k     Key
		found int // line number of the key line, 0 while none
		n     int
	)
	for line := range bytes.Lines(data) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if found != 0 {
			return Key{}, fmt.Errorf("sealed key: line %d: a second key line (the first is on line %d; a key file holds one key)", n, found)
		}
		found = n
		// Decode into a buffer with room for a longer input, so that a
		// wrong length is reported as such rather than as corrupt base64.
		var buf [48]byte
		if len(line) > 64 {
			return Key{}, fmt.Errorf("sealed key: line %d: %d characters is too long for a %d-byte key in base64 (44 characters)", n, len(line), KeySize)
		}
		m, err := base64.StdEncoding.Decode(buf[:], line)
		if err != nil {
			var ce base64.CorruptInputError
			if errors.As(err, &ce) {
				return Key{}, fmt.Errorf("sealed key: line %d: not standard base64 (bad character or padding at column %d)", n, int64(ce)+1)
			}
			return Key{}, fmt.Errorf("sealed key: line %d: not standard base64: %w", n, err)
		}
		if m != KeySize {
			return Key{}, fmt.Errorf("sealed key: line %d: %d bytes, want %d", n, m, KeySize)
		}
		copy(k[:], buf[:m])
	}
	if found == 0 {
		return Key{}, fmt.Errorf("sealed key: no key line (want %d bytes in base64 on one line)", KeySize)
	}
	if k == (Key{}) {
		return Key{}, fmt.Errorf("sealed key: line %d: the key is all zero bytes, not a random key", found)
	}
	return k, nil
}

// MarshalText returns the contents of a key file: a comment header and the
// key in standard base64 on one line. ParseKey reads it back.
func (k Key) MarshalText() ([]byte, error) {
	b := make([]byte, 0, len(keyHeader)+base64.StdEncoding.EncodedLen(KeySize)+1)
	b = append(b, keyHeader...)
	b = base64.StdEncoding.AppendEncode(b, k[:])
	return append(b, '\n'), nil
}

// UnmarshalText is ParseKey.
func (k *Key) UnmarshalText(text []byte) error {
	v, err := ParseKey(text)
	if err != nil {
		return err
	}
	*k = v
	return nil
}

const redacted = "sealed.Key(redacted)"

// String hides the key.
func (Key) String() string { return redacted }

// GoString hides the key from %#v.
func (Key) GoString() string { return redacted }

// Format hides the key from every fmt verb, %x and %d included.
func (Key) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue hides the key from slog.
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// subKeys derives the AES-256 key and the source-tag key.
func (k Key) subKeys() (aesKey, tagKey [32]byte) {
	derive := func(dst *[32]byte, info string) {
		b, err := hkdf.Key(sha256.New, k[:], nil, info, len(dst))
		if err != nil {
			// Only an impossible length makes hkdf fail.
			panic("sealed: hkdf: " + err.Error())
		}
		copy(dst[:], b)
	}
	derive(&aesKey, InfoAES)
	derive(&tagKey, InfoTag)
	return aesKey, tagKey
}
