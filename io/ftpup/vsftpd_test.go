package ftpup

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/internal/testenv"
)

// vsftpd is one vsftpd process a test owns: started from a config the test writes, killed
// at cleanup. Files land in Root/UploadDir.
type vsftpd struct {
	Addr      string
	Root      string // anon_root: owned by root, not writable by the ftp user
	UploadDir string // "incoming": writable by the ftp user
	CAs       *x509.CertPool
	cmd       *exec.Cmd
	log       string
}

// Why the layout: vsftpd chroots the anonymous user into anon_root and (like for local users
// with chroot) refuses a root the ftp user can write to ("500 OOPS: vsftpd: refusing to run
// with writable root inside chroot()"). So anon_root stays root-owned 0755 and uploads go to a
// subdirectory owned by the ftp user.
func prepareRoot(t *testing.T) (root string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "ftproot")
	in := filepath.Join(root, "incoming")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent is 0700; vsftpd chroots as root, so the ftp user needs no access
	// above anon_root, but anon_root itself must be readable.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("ftp")
	if err != nil {
		t.Fatalf("vsftpd needs the ftp user (Debian's package creates it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(in, uid, gid); err != nil {
		t.Fatal(err)
	}
	// secure_chroot_dir: an empty directory the unprivileged part of vsftpd chroots into.
	if err := os.MkdirAll("/var/run/vsftpd/empty", 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// vsftpdConfig is the whole config; every key is spelled out because a misspelled one makes
// vsftpd exit with status 2 and no message.
func vsftpdConfig(port int, root, logFile, certFile, keyFile string) string {
	pasv := 40000 + port%20000 // a range of its own per port, clear of others' listeners
	lines := []string{
		"listen=YES", "listen_ipv6=NO", "background=NO",
		"listen_address=127.0.0.1", fmt.Sprintf("listen_port=%d", port),
		"anonymous_enable=YES", "local_enable=NO", "no_anon_password=YES",
		"write_enable=YES", "anon_upload_enable=YES", "anon_other_write_enable=YES",
		"anon_mkdir_write_enable=NO", "anon_umask=022", "anon_root=" + root,
		"pasv_enable=YES", "pasv_address=127.0.0.1",
		fmt.Sprintf("pasv_min_port=%d", pasv), fmt.Sprintf("pasv_max_port=%d", pasv+20),
		"connect_from_port_20=NO", "secure_chroot_dir=/var/run/vsftpd/empty",
		"seccomp_sandbox=NO", "dirmessage_enable=NO", "use_localtime=NO",
		"xferlog_enable=YES", "log_ftp_protocol=YES", "vsftpd_log_file=" + logFile,
	}
	if certFile != "" {
		lines = append(lines, "ssl_enable=YES", "allow_anon_ssl=YES",
			"force_anon_logins_ssl=YES", "force_anon_data_ssl=YES",
			"rsa_cert_file="+certFile, "rsa_private_key_file="+keyFile,
			"ssl_tlsv1=YES", "ssl_sslv2=NO", "ssl_sslv3=NO", "ssl_ciphers=HIGH")
	}
	return strings.Join(lines, "\n") + "\n"
}

// startVsftpd starts vsftpd on port (0 picks one) and waits for its 220 greeting.
func startVsftpd(t *testing.T, port int, tlsOn bool) *vsftpd {
	t.Helper()
	bin := testenv.RequireVsftpd(t)
	if port == 0 {
		port = freePort(t)
	}
	dir := t.TempDir()
	s := &vsftpd{Addr: fmt.Sprintf("127.0.0.1:%d", port), Root: prepareRoot(t), UploadDir: "incoming",
		log: filepath.Join(dir, "vsftpd.log")}
	var cert, key string
	if tlsOn {
		cert, key, s.CAs = selfSigned(t, dir)
	}
	conf := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(conf, []byte(vsftpdConfig(port, s.Root, s.log, cert, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, conf)
	var stderr strings.Builder
	s.cmd.Stdout, s.cmd.Stderr = &stderr, &stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start vsftpd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("vsftpd log:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("vsftpd exited (%v; status 2 means a bad config key): %s", err, stderr.String())
		default:
		}
		if greets(s.Addr) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("vsftpd on %s did not greet within 10s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	ln, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(ln, "220")
}

// selfSigned makes a certificate for 127.0.0.1 and returns the files and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "quancun test ftp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}
