package server_test

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/topolane/topolane/extender/extendertest"
)

// The objects a kube-scheduler v1.37 puts in ExtenderArgs, as it holds them: the pod from its
// pod informer, which drops managedFields (pkg/scheduler.newPodInformer), and the Nodes from
// the plain node informer, which keeps them.

var created = metav1.NewTime(time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC))

// scheduledPod is a pending 2-GPU PyTorch worker as the API server stores it after admission
// (service account volume, default tolerations, defaults filled in).
func scheduledPod(gpus int) *corev1.Pod {
	pod := extendertest.Pod("ml-team", "llama-ft-worker-3", gpus, "k8s.v1.cni.cncf.io/networks", "rdma")
	pod.GenerateName = "llama-ft-worker-"
	pod.ResourceVersion, pod.CreationTimestamp, pod.Generation = "88172634", created, 1
	pod.Labels = map[string]string{"app.kubernetes.io/name": "llama-ft", "training.kubeflow.org/job-name": "llama-ft",
		"training.kubeflow.org/replica-type": "worker", "training.kubeflow.org/replica-index": "3",
		"batch.kubernetes.io/controller-uid": "6d1c3a52-8f0e-4c1e-9d7b-2f61f1c2b0aa"}
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "kubeflow.org/v1", Kind: "PyTorchJob", Name: "llama-ft",
		UID: "6d1c3a52-8f0e-4c1e-9d7b-2f61f1c2b0aa", Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}
	pod.Spec = podSpec(pod.Spec.Containers[0].Resources, gpus)
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable}
	return pod
}

func podSpec(gpuResources corev1.ResourceRequirements, gpus int) corev1.PodSpec {
	res := gpuResources.DeepCopy()
	res.Requests[corev1.ResourceCPU], res.Requests[corev1.ResourceMemory] = resource.MustParse("24"), resource.MustParse("200Gi")
	res.Limits[corev1.ResourceMemory] = resource.MustParse("220Gi")
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "pytorch", Image: "nvcr.io/nvidia/pytorch:25.10-py3", ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"torchrun"}, Args: []string{"--nnodes=8", "--nproc-per-node=" + fmt.Sprint(gpus), "--rdzv-backend=c10d", "train.py", "--config=/etc/job/config.yaml"},
			Ports: []corev1.ContainerPort{{Name: "pytorchjob-port", ContainerPort: 23456, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{{Name: "MASTER_PORT", Value: "23456"}, {Name: "MASTER_ADDR", Value: "llama-ft-master-0"},
				{Name: "WORLD_SIZE", Value: "8"}, {Name: "RANK", Value: "3"}, {Name: "PYTHONUNBUFFERED", Value: "1"},
				{Name: "NCCL_DEBUG", Value: "WARN"}, {Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.uid"}}}},
			Resources: *res,
			VolumeMounts: []corev1.VolumeMount{{Name: "dshm", MountPath: "/dev/shm"}, {Name: "topolane", MountPath: "/etc/topolane", SubPathExpr: "$(POD_UID)", ReadOnly: true},
				{Name: "kube-api-access-7xk2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			SecurityContext:          &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"IPC_LOCK"}}},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}},
		Volumes: []corev1.Volume{
			{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("64Gi"))}}},
			{Name: "topolane", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/topolane/pods", Type: ptr(corev1.HostPathDirectory)}}},
			{Name: "kube-api-access-7xk2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr[int32](420), Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr[int64](3607), Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
			}}}},
		},
		RestartPolicy: corev1.RestartPolicyOnFailure, TerminationGracePeriodSeconds: ptr[int64](30), DNSPolicy: corev1.DNSClusterFirst,
		ServiceAccountName: "default", DeprecatedServiceAccount: "default", SecurityContext: &corev1.PodSecurityContext{},
		SchedulerName: "topolane-scheduler", Priority: ptr[int32](0), EnableServiceLinks: ptr(true),
		PreemptionPolicy: ptr(corev1.PreemptLowerPriority),
		Tolerations: []corev1.Toleration{
			{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr[int64](300)},
			{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr[int64](300)},
		},
	}
}

// fullNode is a GPU node as a kubelet, node-feature-discovery and GPU feature discovery
// publish it, with its managedFields, as the scheduler's node informer holds it.
func fullNode(name string, gpus int) corev1.Node {
	n := *extendertest.Node(name, gpus)
	n.ResourceVersion, n.CreationTimestamp = "88170012", created
	n.Labels = nodeLabels(name, gpus)
	n.Annotations = map[string]string{"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true",
		"csi.volume.kubernetes.io/nodeid": `{"nfs.csi.k8s.io":"` + name + `"}`, "nfd.node.kubernetes.io/feature-labels": "cpu-cpuid.AVX512F,cpu-cpuid.AMXBF16,kernel-version.full,pci-10de.present,pci-15b3.present",
		"k8s.ovn.org/node-primary-ifaddr": `{"ipv4":"10.20.3.17/16"}`}
	n.ManagedFields = managedFields()
	n.Spec = corev1.NodeSpec{PodCIDR: "10.244.17.0/24", PodCIDRs: []string{"10.244.17.0/24"}, ProviderID: "baremetal://" + name}
	n.Status.Capacity[corev1.ResourceEphemeralStorage] = resource.MustParse("3748686588Ki")
	n.Status.Capacity["hugepages-1Gi"], n.Status.Capacity["hugepages-2Mi"] = resource.MustParse("0"), resource.MustParse("0")
	n.Status.Capacity["rdma/rdma_shared_device_a"] = resource.MustParse("63")
	n.Status.Allocatable = n.Status.Capacity.DeepCopy()
	n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("127500m")
	n.Status.Conditions = nodeConditions()
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.20.3.17"}, {Type: corev1.NodeHostName, Address: name}}
	n.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}
	n.Status.NodeInfo = corev1.NodeSystemInfo{MachineID: "3f2b8a1c9d4e4f5a8b7c6d5e4f3a2b1c", SystemUUID: "4c4c4544-0052-4e10-8035-b2c04f4e3733",
		BootID: "a1f3e6c2-7d9b-4e8a-b5c4-3d2e1f0a9b8c", KernelVersion: "6.8.0-60-generic", OSImage: "Ubuntu 24.04.2 LTS",
		ContainerRuntimeVersion: "containerd://2.1.4", KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64"}
	n.Status.Images = nodeImages()
	return n
}

func nodeLabels(name string, gpus int) map[string]string {
	l := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "dgx-h100",
		"topology.kubernetes.io/zone": "dc1-row4", "nvidia.com/gpu.count": fmt.Sprint(gpus), "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
		"nvidia.com/gpu.memory": "81559", "nvidia.com/gpu.family": "hopper", "nvidia.com/gpu.compute.major": "9", "nvidia.com/gpu.compute.minor": "0",
		"nvidia.com/cuda.driver.major": "580", "nvidia.com/cuda.driver.minor": "95", "nvidia.com/cuda.runtime.major": "13", "nvidia.com/mig.capable": "true",
		"nvidia.com/gpu.present": "true", "nvidia.com/gpu.deploy.driver": "pre-installed", "nvidia.com/gpu.deploy.device-plugin": "true",
		"feature.node.kubernetes.io/pci-10de.present": "true", "feature.node.kubernetes.io/pci-15b3.present": "true",
		"feature.node.kubernetes.io/network-sriov.capable": "true", "feature.node.kubernetes.io/kernel-version.full": "6.8.0-60-generic",
		"feature.node.kubernetes.io/cpu-cpuid.AVX512F": "true", "feature.node.kubernetes.io/cpu-cpuid.AMXBF16": "true",
		"feature.node.kubernetes.io/cpu-model.vendor_id": "Intel", "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
		"feature.node.kubernetes.io/rdma.available": "true", "topolane.io/agent": "ready"}
	return l
}

func nodeConditions() []corev1.NodeCondition {
	beat := metav1.NewTime(created.Add(3 * time.Hour))
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, LastHeartbeatTime: beat, LastTransitionTime: created, Reason: reason, Message: msg}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", "RouteController created a route"),
	}
}

func nodeImages() []corev1.ContainerImage {
	images := []struct {
		name string
		size int64
	}{{"nvcr.io/nvidia/pytorch:25.10-py3", 10215539876}, {"nvcr.io/nvidia/k8s-device-plugin:v0.18.0", 174388211},
		{"nvcr.io/nvidia/gpu-feature-discovery:v0.18.0", 172000415}, {"registry.k8s.io/nfd/node-feature-discovery:v0.18.1", 68833510},
		{"ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2-thick", 89311412}, {"ghcr.io/topolane/topolane-agent:v0.4.0", 31876112},
		{"registry.k8s.io/kube-proxy:v1.37.2", 31004455}, {"docker.io/calico/node:v3.31.0", 126377871}, {"registry.k8s.io/pause:3.10.1", 320368}}
	out := make([]corev1.ContainerImage, len(images))
	for i, im := range images {
		out[i] = corev1.ContainerImage{Names: []string{im.name[:len(im.name)-len(":x")] + "@sha256:9d3c7f1e2a8b4c6d0e5f7a9b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b3c4d", im.name}, SizeBytes: im.size}
	}
	return out
}

func managedFields() []metav1.ManagedFieldsEntry {
	entry := func(manager, sub, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &created,
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields), Subresource: sub}
	}
	return []metav1.ManagedFieldsEntry{
		entry("kubelet", "", `{"f:metadata":{"f:annotations":{".":{},"f:node.alpha.kubernetes.io/ttl":{},"f:volumes.kubernetes.io/controller-managed-attach-detach":{}},"f:labels":{".":{},"f:beta.kubernetes.io/arch":{},"f:beta.kubernetes.io/os":{},"f:kubernetes.io/arch":{},"f:kubernetes.io/hostname":{},"f:kubernetes.io/os":{}}},"f:spec":{"f:providerID":{}}}`),
		entry("kube-controller-manager", "", `{"f:spec":{"f:podCIDR":{},"f:podCIDRs":{".":{},"v:\"10.244.17.0/24\"":{}}}}`),
		entry("nfd-master", "", `{"f:metadata":{"f:annotations":{"f:nfd.node.kubernetes.io/feature-labels":{}},"f:labels":{"f:feature.node.kubernetes.io/cpu-cpuid.AMXBF16":{},"f:feature.node.kubernetes.io/cpu-cpuid.AVX512F":{},"f:feature.node.kubernetes.io/cpu-model.vendor_id":{},"f:feature.node.kubernetes.io/kernel-version.full":{},"f:feature.node.kubernetes.io/network-sriov.capable":{},"f:feature.node.kubernetes.io/pci-10de.present":{},"f:feature.node.kubernetes.io/pci-15b3.present":{},"f:feature.node.kubernetes.io/rdma.available":{},"f:feature.node.kubernetes.io/system-os_release.ID":{}}}}`),
		entry("gpu-feature-discovery", "", `{"f:metadata":{"f:labels":{"f:nvidia.com/cuda.driver.major":{},"f:nvidia.com/cuda.driver.minor":{},"f:nvidia.com/cuda.runtime.major":{},"f:nvidia.com/gpu.compute.major":{},"f:nvidia.com/gpu.compute.minor":{},"f:nvidia.com/gpu.count":{},"f:nvidia.com/gpu.family":{},"f:nvidia.com/gpu.memory":{},"f:nvidia.com/gpu.product":{},"f:nvidia.com/mig.capable":{}}}}`),
		entry("kubelet", "status", `{"f:status":{"f:allocatable":{"f:cpu":{},"f:ephemeral-storage":{},"f:memory":{},"f:nvidia.com/gpu":{},"f:rdma/rdma_shared_device_a":{}},"f:capacity":{"f:ephemeral-storage":{},"f:memory":{},"f:nvidia.com/gpu":{},"f:rdma/rdma_shared_device_a":{}},"f:conditions":{"k:{\"type\":\"DiskPressure\"}":{"f:lastHeartbeatTime":{}},"k:{\"type\":\"MemoryPressure\"}":{"f:lastHeartbeatTime":{}},"k:{\"type\":\"PIDPressure\"}":{"f:lastHeartbeatTime":{}},"k:{\"type\":\"Ready\"}":{"f:lastHeartbeatTime":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{}}},"f:images":{},"f:nodeInfo":{"f:bootID":{},"f:kernelVersion":{}}}}`),
	}
}

func ptr[T any](v T) *T { return &v }
