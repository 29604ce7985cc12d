package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestHealthListenServesOnlyHealth(t *testing.T) {
	verbs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "handled "+r.URL.Path) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := freeAddr(t)
	if err := serveHealth(ctx, addr, verbs); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/readyz", http.StatusOK},
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodPost, "/bind", http.StatusNotFound},
		{http.MethodPost, "/filter", http.StatusNotFound},
		{http.MethodGet, "/debug/nodes/n1", http.StatusNotFound},
		{http.MethodPost, "/readyz", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tt.method, "http://"+addr+tt.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: %d %q, want %d", tt.method, tt.path, resp.StatusCode, body, tt.status)
		}
	}
}

func TestHealthListenFailsOnATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = serveHealth(context.Background(), l.Addr().String(), http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "--health-listen") {
		t.Errorf("err = %v, want the flag named", err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
