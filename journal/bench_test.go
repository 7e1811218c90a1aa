package journal

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkAdd measures one durable Add: a line written and fsynced, the
// cost every open with a timed close pays before its start command. It
// depends on the file system under the test's temporary directory.
func BenchmarkAdd(b *testing.B) {
	j, _, err := openAll(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	r := rec("ssh", "192.0.2.1", t0)
	i := 0
	for b.Loop() {
		r.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		id, err := j.Add(r)
		if err != nil {
			b.Fatal(err)
		}
		// Keep the journal small, as closes do.
		if err := j.Done(id); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpen measures a start's replay and rewrite of a journal with
// 10 000 pending closes.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	j, _, err := openAll(dir)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		r := rec("ssh", netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String(), t0.Add(time.Duration(i)*time.Second))
		if _, err := j.Add(r); err != nil {
			b.Fatal(err)
		}
	}
	j.Close()
	for b.Loop() {
		j, recs, err := openAll(dir)
		if err != nil || len(recs) != 10000 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
		j.Close()
	}
}
