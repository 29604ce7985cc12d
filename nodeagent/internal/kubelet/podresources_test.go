package kubelet

import (
	"context"
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/grpc"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// fakeKubelet serves the PodResources API on a unix socket, as kubelet does.
type fakeKubelet struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
	pods []*podresourcesv1.PodResources
}

func (f *fakeKubelet) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	return &podresourcesv1.ListPodResourcesResponse{PodResources: f.pods}, nil
}

func TestAllocated(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "kubelet.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	gpus := func(resource string, ids ...string) *podresourcesv1.ContainerDevices {
		return &podresourcesv1.ContainerDevices{ResourceName: resource, DeviceIds: ids}
	}
	container := func(name string, devices ...*podresourcesv1.ContainerDevices) *podresourcesv1.ContainerResources {
		return &podresourcesv1.ContainerResources{Name: name, Devices: devices}
	}
	podresourcesv1.RegisterPodResourcesListerServer(srv, &fakeKubelet{pods: []*podresourcesv1.PodResources{
		{Namespace: "train", Name: "a", Containers: []*podresourcesv1.ContainerResources{
			container("init", gpus("nvidia.com/gpu", gpu0)), // kubelet gives an init container's devices to the app again
			container("sidecar", gpus("nvidia.com/gpu", gpu0)),
			container("w", gpus("nvidia.com/gpu", gpu0, gpu1), gpus("rdma/hca", "x")),
		}},
		{Namespace: "train", Name: "shared", Containers: []*podresourcesv1.ContainerResources{
			container("w", gpus("nvidia.com/gpu.shared", gpu1+"::0", gpu1+"::1")),
		}},
		{Namespace: "train", Name: "mig", Containers: []*podresourcesv1.ContainerResources{
			container("w", gpus("nvidia.com/mig-1g.10gb", mig0), gpus("nvidia.com/mig-3g.40gb", "MIG-"+gpu1+"/1/0")),
		}},
		{Namespace: "train", Name: "odd", Containers: []*podresourcesv1.ContainerResources{
			container("w", gpus("nvidia.com/gpu", gpu0, "nvidia0")),
		}},
		{Namespace: "web", Name: "b"},
	}})
	go srv.Serve(l)
	defer srv.Stop()
	got, err := PodResources{Socket: socket, Resources: DefaultResources, GPUs: node()}.Allocated(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"train/a":      {gpu0, gpu1},
		"train/shared": {gpu1},
		"train/mig":    {gpu0, gpu1},
		"train/odd":    {gpu0, "nvidia0"}, // handed on: that pod's ADD is refused naming it
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Allocated = %v, want %v", got, want)
	}
	if _, err := (PodResources{Socket: filepath.Join(t.TempDir(), "none.sock")}).Allocated(context.Background()); err == nil {
		t.Error("a missing socket must be an error")
	}
}
