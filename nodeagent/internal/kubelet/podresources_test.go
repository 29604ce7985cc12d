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
	podresourcesv1.RegisterPodResourcesListerServer(srv, &fakeKubelet{pods: []*podresourcesv1.PodResources{
		{Namespace: "train", Name: "a", Containers: []*podresourcesv1.ContainerResources{
			{Name: "w", Devices: []*podresourcesv1.ContainerDevices{
				{ResourceName: "nvidia.com/gpu", DeviceIds: []string{"GPU-1", "GPU-2"}},
				{ResourceName: "rdma/hca", DeviceIds: []string{"x"}},
			}},
			{Name: "side", Devices: []*podresourcesv1.ContainerDevices{{ResourceName: "nvidia.com/gpu", DeviceIds: []string{"GPU-3"}}}},
		}},
		{Namespace: "web", Name: "b"},
	}})
	go srv.Serve(l)
	defer srv.Stop()
	got, err := PodResources{Socket: socket, Resources: []string{"nvidia.com/gpu"}}.Allocated(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{"train/a": {"GPU-1", "GPU-2", "GPU-3"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Allocated = %v, want %v", got, want)
	}
	if _, err := (PodResources{Socket: filepath.Join(t.TempDir(), "none.sock")}).Allocated(context.Background()); err == nil {
		t.Error("a missing socket must be an error")
	}
}
