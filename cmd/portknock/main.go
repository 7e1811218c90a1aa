// Command portknock knocks on a portknockd (or knockd) door: it sends one
// TCP SYN or one UDP datagram to each port of a sequence, in order; or, on
// a sealed door, one block sealed with the door's key as 16 knocks.
//
// Usage:
//
//	portknock [-u] [-d ms] [-4|-6] [-v] host port[:proto] ...
//	portknock --key FILE [--id N] [--source ADDR|none] [-u] [-d ms] [-4|-6] [-v] host BASE
//	portknock keygen FILE
//
// The options are those of knockd's knock client. Unlike knock, the host is
// resolved once for the whole sequence, no root is needed, and the exit
// status says whether every knock was sent: 0 if so, 1 if the host could
// not be resolved, the key file could not be used or a knock could not be
// sent, 2 for a bad command line.
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
	"portknock/internal/keyfile"
	"portknock/knock"
	"portknock/sealed"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, systemRunner()))
}

// systemRunner knocks for real: the system's resolver, routes and sockets,
// clock and random numbers.
func systemRunner() knock.Runner {
	return knock.Runner{Resolver: net.DefaultResolver, Sender: knock.Net{}, Router: knock.Net{}}
}

const usageHead = `Usage: portknock [options] host port[:proto] ...
       portknock --key FILE [--id N] [--source ADDR|none] [options] host BASE
       portknock keygen FILE

Knocks on host's ports in order: one TCP SYN or one UDP datagram each.
A knock is PORT, PORT:PROTO or PORT/PROTO, where PROTO is tcp or udp.

With --key, knocks on a sealed door instead: one block, encrypted with the
door's key and bound to this client's address and the current time, sent
as 16 knocks on BASE..BASE+4095 (TCP, or UDP with -u, as the door says).
Each run makes a new block, which opens the door once; knock again rather
than resend. The key file must be readable by its owner only (mode 0600).

keygen writes a new random key to FILE, mode 0600, and never overwrites an
existing file. Name it in the door (sealed = { base = ..., key_file = ... })
and copy it to each client, mode 0600.

Options:
`

const usageTail = `
The source of a sealed knock is the address the daemon sees the knocks come
from. By default it is this machine's address toward host. Behind a NAT the
daemon sees the NAT's public address: give it with --source. --source none
sends an unbound block, which only doors with bind_source = false accept;
anyone who sees such a block can use it first, from anywhere.

Examples:
  portknock server.example.com 7000 8000:udp 9000/tcp
  portknock keygen ssh.key
  portknock --key ssh.key server.example.com 40000
  portknock --key ssh.key --source 203.0.113.7 server.example.com 40000

To knock on a host named keygen, put an option or -- before it.

Exit status:
  0   every knock was sent (or the key written)
  1   the host could not be resolved, the key file could not be used or a
      knock could not be sent
  2   a bad command line
`

// run is main with its outside world passed in: tests give it a fake
// resolver and sender, and the real one runs inside a test's namespace.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, r knock.Runner) int {
	// Only as the very first word: "portknock -v keygen 7000" still knocks
	// on a host named keygen.
	if len(args) > 0 && args[0] == "keygen" {
		return keygen(args[1:], stdout, stderr, r.Rand)
	}
	fs := flag.NewFlagSet("portknock", flag.ContinueOnError)
	// Errors are reported below, in one style, rather than by pflag.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false // knock's order, which its users know
	var opts knock.Options
	fs.BoolVarP(&opts.UDP, "udp", "u", false, "knock with UDP (default TCP): ports that name no protocol, or a sealed door's knocks")
	fs.IntVarP(&opts.DelayMS, "delay", "d", 0, "wait `ms` milliseconds between knocks")
	fs.BoolVarP(&opts.IPv4, "ipv4", "4", false, "use an IPv4 address of host only")
	fs.BoolVarP(&opts.IPv6, "ipv6", "6", false, "use an IPv6 address of host only")
	verbose := fs.BoolP("verbose", "v", false, "print each knock as it is sent (sealed: the block's source, time and nonce first)")
	fs.StringVar(&opts.KeyFile, "key", "", "knock on a sealed door with the key in `FILE`; the arguments are then host BASE")
	fs.StringVar(&opts.ID, "id", "", "the sealed door's id, `N` = 0-255 (default 0)")
	fs.StringVar(&opts.Source, "source", "", "bind the sealed block to `ADDR|none`: the address the daemon sees the knocks come from (default: this machine's address toward host), or none (unbound)")
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
	if fs.Changed("key") && opts.KeyFile == "" {
		// Without this, --key "" would quietly make a plain knock on BASE.
		return usageError(stderr, errors.New("--key needs a key file, not an empty name"))
	}
	opts.Args = fs.Args()
	plan, err := opts.Plan()
	if err != nil {
		return usageError(stderr, err)
	}
	if plan.Sealed != nil {
		if plan.Sealed.Key, err = keyfile.Read(plan.Sealed.KeyFile); err != nil {
			fmt.Fprintf(stderr, "portknock: %v\n", err)
			return 1
		}
	}
	if *verbose {
		r.Verbose = stdout
	}
	r.Notes = stderr
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

const usageShort = `Usage: portknock [-u] [-d ms] [-4|-6] [-v] host port[:proto] ...
       portknock --key FILE [--id N] [--source ADDR|none] [-u] [-d ms] [-4|-6] [-v] host BASE
       portknock keygen FILE
Try 'portknock --help' for more information.
`

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "portknock: %v\n%s", err, usageShort)
	return 2
}

// keygen is "portknock keygen FILE": a new key, from rnd (nil: the system's
// random source), in a new file.
func keygen(args []string, stdout, stderr io.Writer, rnd io.Reader) int {
	fs := flag.NewFlagSet("portknock keygen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	help := fs.BoolP("help", "h", false, "print this help and exit")
	if err := fs.Parse(args); err != nil {
		return usageError(stderr, fmt.Errorf("keygen: %w", err))
	}
	if *help {
		fmt.Fprint(stdout, keygenHelp)
		return 0
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		return usageError(stderr, errors.New("keygen takes one argument, the FILE to write the new key to"))
	}
	path := fs.Arg(0)
	key, err := sealed.NewKey(rnd)
	if err != nil {
		fmt.Fprintf(stderr, "portknock: keygen: %v\n", err)
		return 1
	}
	if err := keyfile.Write(path, key); err != nil {
		fmt.Fprintf(stderr, "portknock: keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "portknock: wrote a new sealed-door key to %s (mode 0600)\n", path)
	fmt.Fprintf(stdout, "Name it in the door: sealed = { base = ..., key_file = %q }\n", path)
	fmt.Fprintln(stdout, "Copy it to each client with mode 0600 (e.g. install -m 600), over a channel you trust.")
	return 0
}

const keygenHelp = `Usage: portknock keygen FILE

Writes a new random sealed-door key (32 bytes in base64, with a comment
header) to FILE, created with mode 0600. An existing FILE is never
overwritten. The daemon's door names it as key_file; each client gets a
copy, mode 0600, and knocks with portknock --key FILE host BASE.

Options:
  -h, --help   print this help and exit

Exit status:
  0   the key was written
  1   FILE exists already or could not be written
  2   a bad command line
`
