package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// EnvRequired is the environment variable that turns missing
// requirements from skips into failures, so that CI cannot pass by
// silently running none of the integration tests.
const EnvRequired = "PORTKNOCK_INTEGRATION"

// Required reports whether the run demands integration tests.
func Required() bool { return os.Getenv(EnvRequired) == "1" }

// envPrivate marks a test binary re-run by MainPrivate inside namespaces of
// its own.
const envPrivate = "PORTKNOCK_TEST_PRIVATE_NS"

// MainPrivate runs a package's tests, as root on Linux with unshare and ip
// on PATH, inside a network and a mount namespace of their own, by running
// the test binary again under unshare; otherwise it runs them as they are.
// It does not return. Call it from TestMain.
//
// The network namespace has only a loopback interface, so packets a test
// sends never touch the host's network, its loopback included; mounts a
// test makes (a tmpfs to fill up or make read-only) are private, so a
// test killed half-way leaves nothing mounted on the host. Both go away
// with the process.
func MainPrivate(m *testing.M) {
	if os.Getenv(envPrivate) == "" && runtime.GOOS == "linux" && os.Geteuid() == 0 && len(missingCommands("unshare", "ip")) == 0 {
		cmd := exec.Command("unshare", append([]string{"--net", "--mount", "--propagation", "private", "--", "sh", "-c",
			`ip link set lo up && exec "$0" "$@"`, os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), envPrivate+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			os.Exit(0)
		case errors.As(err, &exit):
			os.Exit(exit.ExitCode())
		default:
			fmt.Fprintf(os.Stderr, "cannot run the tests in private namespaces: %v\n", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// RequirePrivate skips t unless the tests run inside MainPrivate's
// namespaces, or fails it there when Required; what says what t does
// that needs them.
func RequirePrivate(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(envPrivate) == "1" {
		return
	}
	skipOrFail(t, what+", so it runs only inside private namespaces: run the tests as root on Linux with unshare and ip")
}

// RequireRoot skips t unless the process is root, or fails it when
// Required; what says what t does that needs root.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	skipOrFail(t, what+" needs root")
}

// skipOrFail ends t for an environment that cannot run it: a skip, or a
// failure when Required.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, EnvRequired)
	}
	t.Skipf("%s; skipping (set %s=1 to make this a failure)", msg, EnvRequired)
}

// Tool returns the path of command name, which Debian's package pkg
// installs. A test that needs it but not root or a namespace calls this:
// a missing command skips t, or fails it when Required.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("test needs %s (Debian package %s): %v", name, pkg, err))
	}
	return p
}

// missingCommands returns the names not found on PATH.
func missingCommands(names ...string) []string {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return missing
}
