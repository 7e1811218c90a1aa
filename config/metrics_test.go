package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestCheckMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		addr      string
		warn, bad bool
	}{
		{addr: "127.0.0.1:9917"},
		{addr: "127.0.0.2:9917"},
		{addr: "[::1]:9917"},
		{addr: "localhost:9917"},
		{addr: "127.0.0.1:0"},
		{addr: "[::ffff:127.0.0.1]:9917"},
		{addr: ":9917", warn: true},
		{addr: "0.0.0.0:9917", warn: true},
		{addr: "192.0.2.1:9917", warn: true},
		{addr: "[2001:db8::1]:9917", warn: true},
		{addr: "127.0.0.1", bad: true},
		{addr: "127.0.0.1:99999", bad: true},
		{addr: "127.0.0.1:http", bad: true},
		{addr: "example.com:9917", bad: true},
		{addr: "[fe80::1%eth0]:9917", bad: true},
		{addr: "", bad: true},
	} {
		warn, err := CheckMetricsAddr(tc.addr)
		if (err != nil) != tc.bad {
			t.Errorf("CheckMetricsAddr(%q): err %v, want error %v", tc.addr, err, tc.bad)
		}
		if (warn != "") != tc.warn {
			t.Errorf("CheckMetricsAddr(%q): warning %q, want one %v", tc.addr, warn, tc.warn)
		}
	}
}

func TestMetricsKey(t *testing.T) {
	base := "[[input]]\ntype = \"text\"\npath = \"-\"\nprefix = \"knock\"\n[[door]]\nname = \"a\"\nsequence = [\"2/tcp\", \"9/tcp\", \"1/tcp\"]\nstart_command = \"true\"\n"
	cfg, err := Parse("test.toml", []byte("[daemon]\nmetrics = \"127.0.0.1:9917\"\n"+base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.Metrics != "127.0.0.1:9917" || len(cfg.Warnings) != 0 {
		t.Errorf("metrics %q, warnings %q", cfg.Daemon.Metrics, cfg.Warnings)
	}
	cfg, err = Parse("test.toml", []byte("[daemon]\nmetrics = \"0.0.0.0:9917\"\n"+base))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "metrics") {
		t.Errorf("warnings %q, want one about metrics", cfg.Warnings)
	}
	if _, err = Parse("test.toml", []byte("[daemon]\nmetrics = \"example.com:80\"\n"+base)); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Errorf("err %v, want one naming metrics", err)
	}
	cfg, err = Parse("test.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.Metrics != "" {
		t.Errorf("metrics %q by default, want off", cfg.Daemon.Metrics)
	}
}

// FuzzCheckMetricsAddr: any string is either refused or a host:port the
// net package can listen on, and only loopback and localhost pass without
// a warning.
func FuzzCheckMetricsAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9917", "[::1]:0", ":9917", "localhost:1", "[::ffff:127.0.0.1]:9", "1.2.3.4:", "[fe80::1%lo]:9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		warn, err := CheckMetricsAddr(addr)
		if err != nil {
			if warn != "" {
				t.Fatalf("%q: both an error and a warning", addr)
			}
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q accepted but not host:port: %v", addr, err)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
			t.Fatalf("%q accepted with port %q", addr, port)
		}
		if warn == "" && host != "localhost" {
			if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
				t.Fatalf("%q accepted without a warning", addr)
			}
		}
	})
}
