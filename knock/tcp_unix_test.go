//go:build unix

package knock

import (
	"net/netip"
	"reflect"
	"syscall"
	"testing"
)

func TestSockaddr(t *testing.T) {
	sa, fam, err := sockaddr(netip.MustParseAddrPort("192.0.2.1:7000"))
	if err != nil || fam != syscall.AF_INET || !reflect.DeepEqual(sa, &syscall.SockaddrInet4{Port: 7000, Addr: [4]byte{192, 0, 2, 1}}) {
		t.Errorf("sockaddr(192.0.2.1:7000) = %#v, %d, %v", sa, fam, err)
	}
	sa, fam, err = sockaddr(netip.MustParseAddrPort("[fe80::1%3]:22"))
	want := &syscall.SockaddrInet6{Port: 22, ZoneId: 3, Addr: netip.MustParseAddr("fe80::1").As16()}
	if err != nil || fam != syscall.AF_INET6 || !reflect.DeepEqual(sa, want) {
		t.Errorf("sockaddr([fe80::1%%3]:22) = %#v, %d, %v", sa, fam, err)
	}
	if _, _, err := sockaddr(netip.MustParseAddrPort("[fe80::1%no-such-interface-here]:22")); err == nil {
		t.Error("sockaddr with an unknown zone succeeded")
	}
}
