// Command portknock knocks on a portknockd (or knockd) door: it sends one
// TCP SYN or one UDP datagram to each port of a sequence, in order.
//
// Usage:
//
//	portknock [-u] [-d ms] [-4|-6] [-v] host port[:proto] ...
//
// The options are those of knockd's knock client. Unlike knock, the host is
// resolved once for the whole sequence, no root is needed, and the exit
// status says whether every knock was sent: 0 if so, 1 if the host could
// not be resolved or a knock could not be sent, 2 for a bad command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	flag "github.com/spf13/pflag"

	"portknock/internal/buildinfo"
	"portknock/knock"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, systemRunner()))
}

// systemRunner knocks for real: the system's resolver and real sockets.
func systemRunner() knock.Runner {
	return knock.Runner{Resolver: net.DefaultResolver, Sender: knock.Net{}}
}

const usageHead = `Usage: portknock [options] host port[:proto] ...

Knocks on host's ports in order: one TCP SYN or one UDP datagram each.
A knock is PORT, PORT:PROTO or PORT/PROTO, where PROTO is tcp or udp.

Options:
`

const usageTail = `
Example: portknock server.example.com 7000 8000:udp 9000/tcp

Exit status: 0 when every knock was sent, 1 when the host could not be
resolved or a knock could not be sent, 2 for a bad command line.
`

// run is main with its outside world passed in: tests give it a fake
// resolver and sender, and the real one runs inside a test's namespace.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, r knock.Runner) int {
	fs := flag.NewFlagSet("portknock", flag.ContinueOnError)
	// Errors are reported below, in one style, rather than by pflag.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false // knock's order, which its users know
	var opts knock.Options
	fs.BoolVarP(&opts.UDP, "udp", "u", false, "knock with UDP on ports that do not name a protocol (default TCP)")
	fs.IntVarP(&opts.DelayMS, "delay", "d", 0, "wait `ms` milliseconds between knocks")
	fs.BoolVarP(&opts.IPv4, "ipv4", "4", false, "use an IPv4 address of host only")
	fs.BoolVarP(&opts.IPv6, "ipv6", "6", false, "use an IPv6 address of host only")
	verbose := fs.BoolP("verbose", "v", false, "print each knock as it is sent")
	help := fs.BoolP("help", "h", false, "print this help and exit")
	showVersion := fs.BoolP("version", "V", false, "print the version and exit")

	if err := fs.Parse(args); err != nil {
		return usageError(stderr, err)
	}
	if *help {
		fmt.Fprint(stdout, usageHead+fs.FlagUsages()+usageTail)
		return 0
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildinfo.Version("portknock"))
		return 0
	}
	opts.Args = fs.Args()
	plan, err := opts.Plan()
	if err != nil {
		return usageError(stderr, err)
	}
	if *verbose {
		r.Verbose = stdout
	}
	if err := r.Run(ctx, plan); err != nil {
		var ue *knock.UsageError
		if errors.As(err, &ue) {
			return usageError(stderr, err)
		}
		fmt.Fprintf(stderr, "portknock: %v\n", err)
		return 1
	}
	return 0
}

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "portknock: %v\nUsage: portknock [-u] [-d ms] [-4|-6] [-v] host port[:proto] ...\nTry 'portknock --help' for more information.\n", err)
	return 2
}
