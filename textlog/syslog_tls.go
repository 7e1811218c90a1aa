package textlog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// SyslogTLSFiles names the PEM files of a TLS syslog listener (RFC 5425).
type SyslogTLSFiles struct {
	// Cert is the listener's certificate, followed by any intermediate
	// certificates the senders need to verify it.
	Cert string
	// Key is the certificate's private key. It must be readable by its
	// owner only: whoever reads it can pose as the listener.
	Key string
	// ClientCA, when set, holds the CA certificates that sign the
	// senders' certificates, and every sender must present one they
	// signed. Empty, senders are not asked for a certificate.
	ClientCA string
}

// SyslogCredentials is a TLS listener's credentials, read from its files by
// LoadSyslogCredentials. It is immutable: a reload reads the files into a new one
// and hands it to SetTLS.
type SyslogCredentials struct {
	files  SyslogTLSFiles
	config *tls.Config
	leaf   *x509.Certificate
}

// maxPEMFile bounds what LoadSyslogCredentials reads from one file: certificates
// and keys are a few kilobytes, and a path mistyped as /dev/zero must fail
// rather than eat memory.
const maxPEMFile = 1 << 20

// LoadSyslogCredentials reads and checks a TLS listener's files: the certificate
// and key must form a pair, the key file must not be open to group or
// others, and a client CA file must hold at least one certificate.
func LoadSyslogCredentials(files SyslogTLSFiles) (*SyslogCredentials, error) {
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("a TLS syslog listener needs a certificate and a key file")
	}
	certPEM, err := readPEMFile(files.Cert, false)
	if err != nil {
		return nil, fmt.Errorf("tls_cert: %w", err)
	}
	keyPEM, err := readPEMFile(files.Key, true)
	if err != nil {
		return nil, fmt.Errorf("tls_key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls_cert %s and tls_key %s: %w", files.Cert, files.Key, err)
	}
	t := &SyslogCredentials{
		files: files,
		leaf:  pair.Leaf,
		config: &tls.Config{
			Certificates: []tls.Certificate{pair},
			// TLS 1.0 and 1.1 are deprecated (RFC 8996).
			MinVersion: tls.VersionTLS12,
			ClientAuth: tls.NoClientCert,
		},
	}
	if files.ClientCA != "" {
		caPEM, err := readPEMFile(files.ClientCA, false)
		if err != nil {
			return nil, fmt.Errorf("tls_client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("tls_client_ca: %s holds no PEM certificate", files.ClientCA)
		}
		t.config.ClientCAs = pool
		t.config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t, nil
}

// readPEMFile reads a credential file. A secret one must not be open to
// group or others; the mode is taken from the opened file, so that a
// rename between a check and the read cannot slip another file in.
func readPEMFile(path string, secret bool) ([]byte, error) {
	// Non-blocking, so that a FIFO named by mistake is refused below
	// instead of holding the daemon's start until something writes to it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); secret && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: a private key must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d KiB, not a PEM file", path, maxPEMFile>>10)
	}
	return data, nil
}

// Files returns the files the credentials were read from.
func (t *SyslogCredentials) Files() SyslogTLSFiles { return t.files }

// Certificate returns the listener's own certificate, for reports of its
// subject and expiry.
func (t *SyslogCredentials) Certificate() *x509.Certificate { return t.leaf }

// ClientCertRequired reports whether senders must present a certificate
// signed by a client CA.
func (t *SyslogCredentials) ClientCertRequired() bool {
	return t.config.ClientAuth == tls.RequireAndVerifyClientCert
}
