// Package netnstest runs integration tests inside throwaway Linux network
// namespaces, so that firewall rules and traffic a test makes can never
// reach the host's own network stack or firewall.
//
// A test calls Require first: integration tests need root and real tools,
// and they skip without them, unless the environment variable
// PORTKNOCK_INTEGRATION=1 says the run must not skip (CI), in which case a
// missing requirement fails the test. New then makes a namespace with its
// loopback up and removes it when the test ends; Run, Command and Start
// execute programs inside it, Do runs Go code inside it, and a started
// Proc's output can be waited on line by line.
//
// A package whose tests send packets or mount file systems without
// needing a namespace per test runs them all inside namespaces of their
// own with MainPrivate, and marks those tests with RequirePrivate.
package netnstest
