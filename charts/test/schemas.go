package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The schemas come from modules on the Go module proxy, downloaded once into the module cache.
var (
	// KubernetesVersions are the newest patch of every supported minor: the chart is rendered
	// for each, and checked against its OpenAPI schema (api/openapi-spec/swagger.json).
	KubernetesVersions = []string{"v1.33.13", "v1.34.4", "v1.35.4", "v1.36.3", "v1.37.2"}
	// ExtraCRDs serve the optional kinds the chart renders (Multus, the Prometheus Operator).
	ExtraCRDs = []ModuleFile{
		{"github.com/k8snetworkplumbingwg/network-attachment-definition-client", "v1.7.6", "artifacts/networks-crd.yaml"},
		{"github.com/prometheus-operator/prometheus-operator", "v0.85.0", "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"},
	}
)

// ModuleFile is a file in a Go module version.
type ModuleFile struct{ Module, Version, Path string }

// Read downloads the module (a no-op once it is in the module cache) and reads the file.
func (f ModuleFile) Read() ([]byte, error) {
	dir, err := moduleDir(f.Module, f.Version)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
}

// KubernetesSwagger is the OpenAPI v2 document of a Kubernetes version.
func KubernetesSwagger(version string) ModuleFile {
	return ModuleFile{"k8s.io/kubernetes", version, "api/openapi-spec/swagger.json"}
}

func moduleDir(module, version string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	// Outside any module: the download must not touch this module's go.mod or go.sum.
	cmd.Dir = os.TempDir()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(stdout.Bytes(), &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	if err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s (the module proxy must be reachable once; later runs use the module cache): %v %s", module, version, err, stderr.String())
	}
	return info.Dir, nil
}
