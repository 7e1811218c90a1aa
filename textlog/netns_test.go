package textlog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// netnsEnv marks a test binary re-run inside a private network namespace.
const netnsEnv = "PORTKNOCK_TEST_NETNS"

// TestMain re-runs the package's tests, as root on Linux, inside a network
// namespace of their own with only a loopback interface, so the syslog
// tests' packets never touch the host's network, its loopback included.
// The namespace goes away with the process.
func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" && runtime.GOOS == "linux" && os.Geteuid() == 0 {
		if _, err := exec.LookPath("unshare"); err == nil {
			if _, err := exec.LookPath("ip"); err == nil {
				cmd := exec.Command("unshare", append([]string{"--net", "--", "sh", "-c",
					`ip link set lo up && exec "$0" "$@"`, os.Args[0]}, os.Args[1:]...)...)
				cmd.Env = append(os.Environ(), netnsEnv+"=1")
				cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
				err := cmd.Run()
				var exit *exec.ExitError
				switch {
				case err == nil:
					os.Exit(0)
				case errors.As(err, &exit):
					os.Exit(exit.ExitCode())
				default:
					fmt.Fprintf(os.Stderr, "cannot run the tests in a private network namespace: %v\n", err)
					os.Exit(1)
				}
			}
		}
	}
	os.Exit(m.Run())
}

// slNetns skips a test that sends packets unless the tests run in their
// own network namespace (as root, with unshare and ip); with
// PORTKNOCK_INTEGRATION=1 that is a failure instead.
func slNetns(t *testing.T) {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		return
	}
	msg := "sends packets, so it runs only inside a private network namespace: run the tests as root on Linux with unshare and ip"
	if os.Getenv("PORTKNOCK_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
