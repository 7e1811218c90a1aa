package replay

import (
	"testing"
	"time"
)

// BenchmarkUse records one block per operation, written and fsynced: the
// time a sealed door's opening waits for the replay cache.
func BenchmarkUse(b *testing.B) {
	c, err := Open(b.TempDir(), Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Use(ct(i), t0.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpen starts on a cache of 10 000 kept blocks: read, check,
// rewrite.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	clk := &clock{t: t0}
	c, err := Open(dir, Options{Now: clk.now})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10_000 {
		c.used[ct(i)] = t0.Add(time.Hour).Unix()
	}
	if err := c.rewriteLocked(); err != nil {
		b.Fatal(err)
	}
	c.Close()
	for b.Loop() {
		c, err := Open(dir, Options{Now: clk.now})
		if err != nil {
			b.Fatal(err)
		}
		if c.Len() != 10_000 {
			b.Fatalf("%d blocks", c.Len())
		}
		c.Close()
	}
}
