//go:build linux

package netnstest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// envHelper names the role a re-executed test binary plays. The test
// binary itself is the helper so that tests depend on no server program
// that might be missing.
const envHelper = "NETNSTEST_HELPER"

// Greeting is the line the service writes on every connection: reading
// it proves the connection reached the service, not just a half-open
// handshake.
const Greeting = "netnstest service"

// HelperMain plays the helper role the environment asks for, if any, and
// then exits; otherwise it returns at once. Call it first in TestMain of
// any package that uses StartService.
func HelperMain() {
	switch os.Getenv(envHelper) {
	case "":
		return
	case "service":
		os.Exit(serve(strings.Fields(os.Getenv(envHelper + "_ADDRS"))))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s role %q\n", envHelper, os.Getenv(envHelper))
		os.Exit(2)
	}
}

// serve listens on every TCP address, says so once all are bound, and
// greets every connection until it is killed.
func serve(addrs []string) int {
	if len(addrs) == 0 {
		fmt.Fprintln(os.Stderr, "service: no addresses")
		return 2
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "service:", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					fmt.Fprintln(os.Stderr, "service:", err)
					os.Exit(1)
				}
				fmt.Fprintln(c, Greeting)
				c.Close()
			}
		}()
	}
	fmt.Println("service listening on", strings.Join(addrs, " "))
	select {}
}

// StartService starts a TCP service on each address inside the namespace,
// as a re-execution of the test binary (see HelperMain), and returns once
// it listens. It stops when t ends.
func (ns *NS) StartService(t testing.TB, addrs ...string) *Proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := ns.Start(t, []string{envHelper + "=service", envHelper + "_ADDRS=" + strings.Join(addrs, " ")}, self)
	p.WaitLine(t, 0, 10*time.Second, "that it listens", func(l string) bool {
		return strings.HasPrefix(l, "service listening on")
	})
	return p
}

// Reach connects to a service started by StartService from inside the
// namespace and reads its greeting. It returns nil only when the greeting
// arrived within timeout; a firewall that drops shows as a timeout, one
// that rejects as a refused connection.
func (ns *NS) Reach(addr string, timeout time.Duration) error {
	return ns.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading greeting from %s: %w", addr, err)
		}
		if strings.TrimSpace(line) != Greeting {
			return fmt.Errorf("%s greeted with %q, not the test service's greeting", addr, line)
		}
		return nil
	})
}
