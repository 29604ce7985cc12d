// Package realapi runs a real kube-apiserver (k8s.io/kubernetes's own command, on an etcd
// embedded in the same process) in a child process of the bench, fills it with a cluster as
// topolane-agent and kubelets would, and runs the real topolane-extender binary against it.
//
// The child is the bench's own executable started again (see RunChildIfAsked): no second
// binary to build, and the API server's CPU and memory stay apart from the scheduler's.
package realapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// childEnv names the directory the child runs the API server in; set only in the child.
const childEnv = "TOPOLANE_BENCH_APISERVER_DIR"

// RunChildIfAsked runs the API server and never returns when this process is the bench's
// child; otherwise it returns at once. Call it first thing in main (and TestMain).
func RunChildIfAsked() {
	dir := os.Getenv(childEnv)
	if dir == "" {
		return
	}
	if err := runChild(dir, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kube-apiserver child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runChild starts etcd in dir, then kube-apiserver with args pointed at it; it returns when the
// API server stops (on SIGTERM, its own signal handling).
func runChild(dir string, args []string) error {
	etcdURL, stop, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return err
	}
	defer stop()
	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(append(args, "--etcd-servers="+etcdURL))
	return cmd.Execute()
}

// startEtcd runs an etcd member on loopback. It does not fsync: the bench measures the
// scheduler and the extender, not this machine's disk (a production etcd batches many writes
// per fsync on a fast disk).
func startEtcd(dir string) (string, func(), error) {
	cfg := embed.NewConfig()
	cfg.Dir, cfg.LogLevel = dir, "error"
	cfg.UnsafeNoFsync = true
	cfg.QuotaBackendBytes = 8 << 30
	client, peer := freeURL(), freeURL()
	if client.Host == "" || peer.Host == "" {
		return "", nil, errors.New("no free loopback port for etcd")
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("starting the embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		e.Close()
		return "", nil, errors.New("the embedded etcd was not ready within a minute")
	}
	return client.String(), e.Close, nil
}

func freeURL() url.URL {
	port, err := freePort()
	if err != nil {
		return url.URL{}
	}
	return url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// APIServer is a running kube-apiserver child.
type APIServer struct {
	// Config is an administrator's client configuration (unthrottled: set QPS on a copy).
	Config *rest.Config
	// Kubeconfig is a file holding the same, for the extender binary.
	Kubeconfig string
	cmd        *exec.Cmd
	log        string
	done       chan error
}

// StartAPIServer starts the child in dir (which must exist and stay until Stop) and waits until
// the API server is ready. Its log goes to dir/kube-apiserver.log.
func StartAPIServer(ctx context.Context, dir string) (*APIServer, error) {
	token, err := credentials(dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &APIServer{log: filepath.Join(dir, "kube-apiserver.log"), done: make(chan error, 1)}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(self, apiserverFlags(dir, port)...)
	s.cmd.Env = append(os.Environ(), childEnv+"="+dir)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the bench
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the kube-apiserver child: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	s.Config = &rest.Config{Host: fmt.Sprintf("https://127.0.0.1:%d", port), BearerToken: token, QPS: -1,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(dir, "certs", "apiserver.crt")}}
	if err := s.waitReady(ctx, 2*time.Minute); err != nil {
		s.Stop()
		return nil, err
	}
	if s.Kubeconfig, err = writeKubeconfig(dir, s.Config); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// apiserverFlags are kube-apiserver's flags for a single loopback server: token authentication
// (an administrator in system:masters), RBAC, no endpoint reconciler (loopback), and no
// ServiceAccount or TaintNodesByCondition admission, which need controllers this cluster does
// not run (a service account per namespace; node lifecycle to lift the not-ready taint).
func apiserverFlags(dir string, port int) []string {
	return []string{
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://topolane-bench.invalid",
		"--service-account-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/16",
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
	}
}

// credentials writes the administrator's token file and the service-account signing key, and
// returns the token.
func credentials(dir string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(token+`,bench-admin,bench-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	return token, os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

// waitReady polls /readyz until it answers ok, the child exits, or timeout passes. The serving
// certificate is generated by the child: until it exists, only the transport is checked.
func (s *APIServer) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // polling readiness only; the clients verify
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Config.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+s.Config.BearerToken)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("kube-apiserver exited (%v):\n%s", err, s.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready within %v:\n%s", timeout, s.LogTail())
}

// LogTail is the end of the child's log.
func (s *APIServer) LogTail() string { return tail(s.log) }

// Stop ends the child (SIGTERM, then SIGKILL after 20 s) and waits for it.
func (s *APIServer) Stop() { stopChild(s.cmd, s.done, 20*time.Second) }

// stopChild sends SIGTERM, then SIGKILL after grace, and waits for the child; done (buffered,
// fed by cmd.Wait) keeps the exit status for whoever reads it next.
func stopChild(cmd *exec.Cmd, done chan error, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		done <- <-done
	}
}

func writeKubeconfig(dir string, c *rest.Config) (string, error) {
	path := filepath.Join(dir, "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthority: c.CAFile}
	cfg.AuthInfos["bench"] = &clientcmdapi.AuthInfo{Token: c.BearerToken}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "bench"}
	cfg.CurrentContext = "bench"
	return path, clientcmd.WriteToFile(*cfg, path)
}
