package sealed

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vectorKey is the test vectors' key: the bytes 0x00, 0x01, … 0x1f.
func vectorKey() Key {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

// The test vectors of docs/sealed.md, which prints the same values: a
// change here is a change of the format.
const (
	vectorAESKey = "0440907e42b0dfeb94a109aa87937c5b3d9b3d20fc2d74e4f76a12ceec30ff60"
	vectorTagKey = "ac0cca7a396ae83abf4ef9517ee65bb3da614d7b7ea2c88a27685b50f471a90a"
	// vectorKeyFile is vectorKey as a key file.
	vectorKeyFile = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

type vector struct {
	name   string
	source string // "" for an unbound block
	id     byte
	base   uint16
	time   int64
	nonce  string
	tag    string
	plain  string
	cipher string
	ports  [Knocks]uint16
}

var vectors = []vector{
	{
		name: "ipv4", source: "192.0.2.1", id: 0, base: 20000, time: 1767225600, nonce: "01234567",
		tag:    "67270e08",
		plain:  "6955b9000123456767270e0800504b01",
		cipher: "28d9578fc3cb47abe70ad0936ffc075c",
		ports:  [Knocks]uint16{20040, 20473, 20599, 20911, 21219, 21483, 21607, 21963, 22279, 22314, 22768, 22963, 23183, 23580, 23591, 23932},
	},
	{
		name: "ipv6", source: "2001:db8::1", id: 1, base: 20000, time: 1767225600, nonce: "01234567",
		tag:    "e18a40b0",
		plain:  "6955b90001234567e18a40b001504b01",
		cipher: "40a44dd58a2d6fe43eb2ecca608b902b",
		ports:  [Knocks]uint16{20064, 20420, 20589, 20981, 21162, 21325, 21647, 22020, 22110, 22482, 22796, 23018, 23168, 23467, 23728, 23883},
	},
	{
		name: "unbound", source: "", id: 0, base: 20000, time: 1767225600, nonce: "01234567",
		tag:    "00000000",
		plain:  "6955b900012345670000000000504b01",
		cipher: "f9d4bf2121c031561d08b7678a5fcfdd",
		ports:  [Knocks]uint16{20249, 20468, 20703, 20801, 21057, 21472, 21585, 21878, 22077, 22312, 22743, 22919, 23210, 23423, 23791, 24061},
	},
	{
		name: "ipv4-mapped", source: "::ffff:198.51.100.7", id: 255, base: 1, time: 1767225645, nonce: "deadbeef",
		tag:    "fb44171b",
		plain:  "6955b92ddeadbeeffb44171bff504b01",
		cipher: "d0b1a842a0a04478c2bf37c54380670b",
		ports:  [Knocks]uint16{209, 434, 681, 835, 1185, 1441, 1605, 1913, 2243, 2496, 2616, 3014, 3140, 3457, 3688, 3852},
	},
	{
		name: "ipv6-highest-base", source: "2001:db8:85a3::8a2e:370:7334", id: 7, base: 61440, time: 1767225600, nonce: "00000000",
		tag:    "e4008bed",
		plain:  "6955b90000000000e4008bed07504b01",
		cipher: "0668640609c5c987b3d8a5ad076348e8",
		ports:  [Knocks]uint16{61446, 61800, 62052, 62214, 62473, 62917, 63177, 63367, 63667, 63960, 64165, 64429, 64519, 64867, 65096, 65512},
	},
}

func (v vector) src() netip.Addr {
	if v.source == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(v.source)
}

func (v vector) nonceBytes(t testing.TB) [4]byte {
	return [4]byte(unhex(t, v.nonce))
}

func (v vector) cipherBytes(t testing.TB) [BlockSize]byte {
	return [BlockSize]byte(unhex(t, v.cipher))
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q in test: %v", s, err)
	}
	return b
}

func TestVectorSubKeys(t *testing.T) {
	aesKey, tagKey := vectorKey().subKeys()
	if got := hex.EncodeToString(aesKey[:]); got != vectorAESKey {
		t.Errorf("AES key = %s, want %s", got, vectorAESKey)
	}
	if got := hex.EncodeToString(tagKey[:]); got != vectorTagKey {
		t.Errorf("tag key = %s, want %s", got, vectorTagKey)
	}
	k, err := ParseKey([]byte(vectorKeyFile + "\n"))
	if err != nil || k != vectorKey() {
		t.Errorf("ParseKey(vector key file) = %x, %v; want the vector key", k[:], err)
	}
}

func TestVectors(t *testing.T) {
	s := NewSealer(vectorKey())
	o := NewOpener(vectorKey())
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			src, nonce := v.src(), v.nonceBytes(t)
			var tag [4]byte
			if src.IsValid() {
				tag = s.Tag(src)
			}
			if got := hex.EncodeToString(tag[:]); got != v.tag {
				t.Errorf("tag = %s, want %s", got, v.tag)
			}
			b := Block{Time: uint32(v.time), Nonce: nonce, Tag: tag, ID: v.id}
			p := b.Marshal()
			if got := hex.EncodeToString(p[:]); got != v.plain {
				t.Errorf("plain block = %s, want %s", got, v.plain)
			}
			c := s.Seal(time.Unix(v.time, 0), nonce, src, v.id)
			if got := hex.EncodeToString(c[:]); got != v.cipher {
				t.Fatalf("ciphertext = %s, want %s", got, v.cipher)
			}
			if got := Ports(v.base, c); got != v.ports {
				t.Errorf("ports = %v, want %v", got, v.ports)
			}
			// The daemon's side: the ports give back the ciphertext, which
			// opens for the vector's source, one second of skew allowed.
			var back [BlockSize]byte
			var seen uint16
			for _, port := range v.ports {
				i, by, ok := Position(v.base, port)
				if !ok {
					t.Fatalf("Position(%d, %d) not ok", v.base, port)
				}
				back[i] = by
				seen |= 1 << i
			}
			if back != c || seen != 0xffff {
				t.Fatalf("ports read back as %x (mask %#x), want %x", back, seen, c)
			}
			got, err := o.Open(back, src, time.Unix(v.time+1, 0), Policy{BindSource: src.IsValid(), MaxSkew: time.Second})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got != b {
				t.Errorf("Open = %+v, want %+v", got, b)
			}
		})
	}
}

// TestDocVectors keeps docs/sealed.md's printed vectors equal to the ones
// tested here.
func TestDocVectors(t *testing.T) {
	doc, err := os.ReadFile("../docs/sealed.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	k := vectorKey()
	want := []string{vectorAESKey, vectorTagKey, vectorKeyFile, hex.EncodeToString(k[:]), InfoAES, InfoTag}
	for _, v := range vectors {
		ports := make([]string, len(v.ports))
		for i, p := range v.ports {
			ports[i] = strconv.Itoa(int(p))
		}
		want = append(want,
			fmt.Sprintf("**%s** — ", v.name),
			"tag         "+v.tag+"\n",
			"plain       "+v.plain+"\n",
			"ciphertext  "+v.cipher+"\n",
			"ports       "+strings.Join(ports, " ")+"\n",
			fmt.Sprintf("door id %d, base %d, time", v.id, v.base),
			"nonce `"+v.nonce+"`",
		)
		if src := v.src(); src.IsValid() {
			want = append(want, "tag input   "+hex.EncodeToString(src.Unmap().AsSlice())+"\n")
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("docs/sealed.md lacks %q", w)
		}
	}
}
