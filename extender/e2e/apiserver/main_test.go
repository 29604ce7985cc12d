// Package apiserver runs topolane's extender against a real kube-apiserver (the full server
// chain, CRDs included, in-process on an embedded etcd) and the real kube-scheduler, so that
// the CRD, the allocation annotation and the binding all go through the real API.
package apiserver

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"

	"go.etcd.io/etcd/server/v3/embed"
)

func TestMain(m *testing.M) {
	os.Exit(runWithEtcd(m))
}

// runWithEtcd runs the tests against an etcd started in-process on free loopback ports: the
// integration framework would start an etcd binary of the version Kubernetes pins, which
// Debian does not ship. The framework finds it through KUBE_INTEGRATION_ETCD_URL.
func runWithEtcd(m *testing.M) int {
	dir, err := os.MkdirTemp("", "topolane-etcd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cfg := embed.NewConfig()
	cfg.Dir, cfg.LogLevel = dir, "error"
	client, peer := freeURL(), freeURL()
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the embedded etcd: %v\n", err)
		return 1
	}
	defer e.Close()
	<-e.Server.ReadyNotify()
	os.Setenv("KUBE_INTEGRATION_ETCD_URL", client.String())
	return m.Run()
}

func freeURL() url.URL {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}
