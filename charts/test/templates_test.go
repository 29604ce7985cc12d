package charttest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"
)

func (r rendered) scheduler() *appsv1.Deployment {
	var d appsv1.Deployment
	r.must("Deployment", "-scheduler", &d)
	return &d
}

func (r rendered) agent() *appsv1.DaemonSet {
	var ds appsv1.DaemonSet
	r.must("DaemonSet", "-agent", &ds)
	return &ds
}

// schedulerConfig decodes the KubeSchedulerConfiguration strictly (an unknown field fails).
func (r rendered) schedulerConfig() *configv1.KubeSchedulerConfiguration {
	r.t.Helper()
	var cm corev1.ConfigMap
	r.must("ConfigMap", "-scheduler", &cm)
	var cfg configv1.KubeSchedulerConfiguration
	if err := yaml.UnmarshalStrict([]byte(cm.Data["scheduler-config.yaml"]), &cfg); err != nil {
		r.t.Fatalf("the scheduler's configuration: %v\n%s", err, cm.Data["scheduler-config.yaml"])
	}
	return &cfg
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// flags returns a container's --flag=value arguments.
func flags(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, a := range c.Args {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			out[k] = v
		}
	}
	return out
}

func TestSchedulerImageFollowsTheCluster(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name, kube string
		args       []string
		image, err string
	}{
		{name: "the cluster's version", kube: "v1.35.4", image: "registry.k8s.io/kube-scheduler:v1.35.4"},
		{name: "k3s suffix stripped", kube: "v1.34.2+k3s1", image: "registry.k8s.io/kube-scheduler:v1.34.2"},
		{name: "EKS suffix stripped", kube: "v1.33.5-eks-3025e55", image: "registry.k8s.io/kube-scheduler:v1.33.5"},
		{name: "GKE suffix stripped", kube: "v1.36.1-gke.1207000", image: "registry.k8s.io/kube-scheduler:v1.36.1"},
		{name: "a tag set", kube: "v1.37.2", args: []string{"--set", "scheduler.image.tag=v1.36.3"}, image: "registry.k8s.io/kube-scheduler:v1.36.3"},
		{name: "a digest", kube: "v1.37.2", args: []string{"--set", "scheduler.image.digest=" + digest}, image: "registry.k8s.io/kube-scheduler:v1.37.2@" + digest},
		{name: "a mirror", kube: "v1.37.2", args: []string{"--set", "scheduler.image.repository=mirror.example.com/kube-scheduler"}, image: "mirror.example.com/kube-scheduler:v1.37.2"},
		{name: "newer than the cluster", kube: "v1.34.4", args: []string{"--set", "scheduler.image.tag=v1.35.0"}, err: "newer than the cluster (v1.34.4)"},
		{name: "not a version", kube: "v1.34.4", args: []string{"--set", "scheduler.image.tag=latest"}, err: `scheduler.image.tag "latest" is not a Kubernetes version`},
		{name: "a cluster too new", kube: "v1.38.1", err: "supports Kubernetes 1.33 to 1.37; this would run kube-scheduler v1.38.1"},
		{name: "too new, allowed", kube: "v1.38.1", args: []string{"--set", "scheduler.allowUnsupportedVersion=true"}, image: "registry.k8s.io/kube-scheduler:v1.38.1"},
		{name: "a cluster too old", kube: "v1.32.9", err: "incompatible with Kubernetes v1.32.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helm().Template(tt.kube, tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Objects(out)
			if err != nil {
				t.Fatal(err)
			}
			r := rendered{t: t, objs: objs}
			if got := container(t, r.scheduler().Spec.Template.Spec, "kube-scheduler").Image; got != tt.image {
				t.Errorf("image = %s, want %s", got, tt.image)
			}
			if got := r.schedulerConfig().APIVersion; got != "kubescheduler.config.k8s.io/v1" {
				t.Errorf("config apiVersion = %s", got)
			}
		})
	}
}

// TestExtenderOnlyOnLoopback: the scheduler calls the extender on 127.0.0.1, the extender
// listens there, and no Service exposes its verbs.
func TestExtenderOnlyOnLoopback(t *testing.T) {
	for _, port := range []int{8888, 18080} {
		r := render(t, "--set", fmt.Sprintf("extender.port=%d", port), "--set", "serviceMonitor.enabled=true")
		cfg := r.schedulerConfig()
		if len(cfg.Extenders) != 1 || cfg.Extenders[0].URLPrefix != fmt.Sprintf("http://127.0.0.1:%d", port) {
			t.Fatalf("extenders = %+v", cfg.Extenders)
		}
		ext := container(t, r.scheduler().Spec.Template.Spec, "extender")
		if got := flags(ext)["listen"]; got != fmt.Sprintf("127.0.0.1:%d", port) {
			t.Errorf("--listen=%s", got)
		}
		for _, p := range ext.Ports {
			if int(p.ContainerPort) == port {
				t.Errorf("the extender's verb port %d is declared on the pod", port)
			}
		}
		for _, svc := range r.all("Service") {
			var s corev1.Service
			convert(t, svc, &s)
			for _, p := range s.Spec.Ports {
				if int(p.Port) == port || p.TargetPort.IntValue() == port {
					t.Errorf("Service %s exposes the extender's verbs on %d", s.Name, port)
				}
			}
		}
	}
}

func TestSchedulerConfiguration(t *testing.T) {
	tests := []struct {
		name                         string
		args                         []string
		profiles                     []string
		lease, schedulerNames, verbs string
		leaderElect                  bool
	}{
		{name: "defaults", profiles: []string{"topolane-scheduler"}, lease: "topolane-scheduler",
			schedulerNames: "topolane-scheduler", verbs: "filter prioritize preempt bind", leaderElect: true},
		{name: "two profiles, own lease, no preemption",
			args:     []string{"--set", "scheduler.schedulerNames={gpu-a,gpu-b}", "--set", "scheduler.leaderElection.leaseName=my-lease", "--set", "extender.preemptVerb="},
			profiles: []string{"gpu-a", "gpu-b"}, lease: "my-lease", schedulerNames: "gpu-a,gpu-b", verbs: "filter prioritize  bind", leaderElect: true},
		{name: "lease follows the first profile", args: []string{"--set", "scheduler.schedulerNames={gpu-a,gpu-b}"},
			profiles: []string{"gpu-a", "gpu-b"}, lease: "gpu-a", schedulerNames: "gpu-a,gpu-b", verbs: "filter prioritize preempt bind", leaderElect: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.args...)
			cfg := r.schedulerConfig()
			var profiles []string
			for _, p := range cfg.Profiles {
				profiles = append(profiles, *p.SchedulerName)
			}
			if diff := cmp.Diff(tt.profiles, profiles); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
			le := cfg.LeaderElection
			if *le.LeaderElect != tt.leaderElect || le.ResourceName != tt.lease || le.ResourceNamespace != "topolane-system" || le.ResourceLock != "leases" {
				t.Errorf("leader election = %+v", le)
			}
			var role rbacv1.Role
			r.must("Role", "-scheduler-lease", &role)
			if !slices.Contains(role.Rules[1].ResourceNames, tt.lease) || !slices.Contains(role.Rules[1].Verbs, "update") {
				t.Errorf("lease Role = %+v, want update on %s", role.Rules, tt.lease)
			}
			e := cfg.Extenders[0]
			if got := strings.Join([]string{e.FilterVerb, e.PrioritizeVerb, e.PreemptVerb, e.BindVerb}, " "); got != tt.verbs {
				t.Errorf("verbs = %q, want %q", got, tt.verbs)
			}
			if !e.NodeCacheCapable || e.Ignorable || e.EnableHTTPS || *cfg.PercentageOfNodesToScore != 100 ||
				len(e.ManagedResources) != 1 || e.ManagedResources[0].Name != "nvidia.com/gpu" {
				t.Errorf("extender = %+v, percentageOfNodesToScore %v", e, *cfg.PercentageOfNodesToScore)
			}
			if got := flags(container(t, r.scheduler().Spec.Template.Spec, "extender"))["scheduler-names"]; got != tt.schedulerNames {
				t.Errorf("--scheduler-names=%s, want %s", got, tt.schedulerNames)
			}
		})
	}
}

func TestConfigChecksumRollsTheScheduler(t *testing.T) {
	sum := func(args ...string) string {
		return render(t, args...).scheduler().Spec.Template.Annotations["checksum/config"]
	}
	a, b := sum(), sum("--set", "extender.weight=7")
	if len(a) != 64 || a == b {
		t.Errorf("checksum/config %q, then %q after a config change", a, b)
	}
	if c := sum("--set", "extender.logLevel=4"); c != a {
		t.Errorf("a change outside the config moved the checksum: %s, %s", a, c)
	}
}

func TestReplicasBringDisruptionBudgetAndSpread(t *testing.T) {
	for _, replicas := range []int{1, 3} {
		r := render(t, "--set", fmt.Sprintf("scheduler.replicas=%d", replicas))
		spec := r.scheduler().Spec.Template.Spec
		hasPDB := len(r.all("PodDisruptionBudget")) == 1
		spread := spec.Affinity != nil && spec.Affinity.PodAntiAffinity != nil
		if hasPDB != (replicas > 1) || spread != (replicas > 1) {
			t.Errorf("replicas %d: PDB %v, anti-affinity %v", replicas, hasPDB, spread)
		}
	}
}

func TestSchedulerPodIsRestricted(t *testing.T) {
	d := render(t).scheduler()
	spec := d.Spec.Template.Spec
	if sc := spec.SecurityContext; sc == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", spec.SecurityContext)
	}
	if spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName = %q", spec.PriorityClassName)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s securityContext = %+v", c.Name, sc)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s lacks probes", c.Name)
		}
	}
	ks := container(t, spec, "kube-scheduler")
	if ks.LivenessProbe.HTTPGet.Path != "/livez" || ks.ReadinessProbe.HTTPGet.Path != "/readyz" || ks.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("kube-scheduler probes = %+v %+v", ks.LivenessProbe, ks.ReadinessProbe)
	}
	ext := container(t, spec, "extender")
	if ext.ReadinessProbe.HTTPGet.Path != "/readyz" || ext.ReadinessProbe.HTTPGet.Port.String() != "health" || flags(ext)["health-listen"] != ":8889" {
		t.Errorf("extender readiness = %+v, flags %v", ext.ReadinessProbe, flags(ext))
	}
}

// TestExtenderIdentity: the extender's token is its own ServiceAccount's, mounted in its
// container alone, and the admission policy names that account.
func TestExtenderIdentity(t *testing.T) {
	tests := []struct {
		separate bool
		account  string
	}{{true, "topolane-extender"}, {false, "topolane-scheduler"}}
	for _, tt := range tests {
		r := render(t, "--set", fmt.Sprintf("extender.serviceAccount.separate=%v", tt.separate))
		spec := r.scheduler().Spec.Template.Spec
		var secret corev1.Secret
		hasSecret := r.find("Secret", "-extender-token", &secret)
		if hasSecret != tt.separate || (hasSecret && (secret.Type != corev1.SecretTypeServiceAccountToken || secret.Annotations[corev1.ServiceAccountNameKey] != tt.account)) {
			t.Errorf("separate=%v: token Secret %v %+v", tt.separate, hasSecret, secret.ObjectMeta)
		}
		mounted := slices.ContainsFunc(container(t, spec, "extender").VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount"
		})
		if mounted != tt.separate || spec.ServiceAccountName != "topolane-scheduler" {
			t.Errorf("separate=%v: token mounted %v, pod account %s", tt.separate, mounted, spec.ServiceAccountName)
		}
		var binding rbacv1.ClusterRoleBinding
		r.must("ClusterRoleBinding", "topolane-extender", &binding)
		if binding.Subjects[0].Name != tt.account {
			t.Errorf("separate=%v: extender role bound to %s", tt.separate, binding.Subjects[0].Name)
		}
		var vap admissionv1.ValidatingAdmissionPolicy
		r.must("ValidatingAdmissionPolicy", "-allocation", &vap)
		want := fmt.Sprintf("request.userInfo.username != 'system:serviceaccount:topolane-system:%s'", tt.account)
		if vap.Spec.MatchConditions[0].Expression != want || !strings.Contains(vap.Spec.Validations[0].MessageExpression, tt.account) {
			t.Errorf("separate=%v: policy exempts %q", tt.separate, vap.Spec.MatchConditions[0].Expression)
		}
		// The extender's allocation travels on the Binding: another binder's must not carry one.
		checksBindings := slices.ContainsFunc(vap.Spec.MatchConstraints.ResourceRules, func(r admissionv1.NamedRuleWithOperations) bool {
			return slices.Contains(r.Resources, "pods/binding") && slices.Contains(r.Operations, admissionv1.Create)
		})
		if !checksBindings {
			t.Errorf("separate=%v: the allocation policy does not check Bindings: %+v", tt.separate, vap.Spec.MatchConstraints.ResourceRules)
		}
	}
}

// TestAgentHostPaths: every host path is a value, mounted where the agent's flags say, the
// kubelet's pod-resources as a directory, the socket's directory apart from the pods'.
func TestAgentHostPaths(t *testing.T) {
	custom := map[string]string{"sys": "/host-sys", "cniBin": "/usr/libexec/cni", "cniConf": "/etc/cni/conf.d", "cniData": "/var/lib/cni-data",
		"netns": "/run/netns", "podResources": "/var/lib/k0s/kubelet/pod-resources", "state": "/var/lib/tl", "socketDir": "/run/tl/agent", "pods": "/run/tl/pods"}
	var args []string
	for k, v := range custom {
		args = append(args, "--set", "agent.hostPaths."+k+"="+v)
	}
	for _, tt := range []struct {
		name  string
		paths map[string]string
		args  []string
	}{
		{"defaults", map[string]string{"sys": "/sys", "cniBin": "/opt/cni/bin", "cniConf": "/etc/cni/net.d", "cniData": "/var/lib/cni", "netns": "/var/run/netns",
			"podResources": "/var/lib/kubelet/pod-resources", "state": "/var/lib/topolane", "socketDir": "/run/topolane/agent", "pods": "/run/topolane/pods"}, nil},
		{"custom", custom, args},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.args...)
			spec := r.agent().Spec.Template.Spec
			agent := container(t, spec, "agent")
			mounts := mountsByHostPath(spec, agent)
			for key, host := range tt.paths {
				if _, ok := mounts[host]; !ok {
					t.Errorf("hostPaths.%s %s is not mounted in the agent", key, host)
				}
			}
			p := tt.paths
			f := flags(agent)
			want := map[string]string{
				"sysfs-root": mounts[p["sys"]].MountPath, "state-dir": mounts[p["state"]].MountPath, "accel-dir": p["pods"],
				"socket": p["socketDir"] + "/agent.sock", "pod-resources-socket": p["podResources"] + "/kubelet.sock",
			}
			for flag, v := range want {
				if f[flag] != v {
					t.Errorf("--%s=%s, want %s", flag, f[flag], v)
				}
			}
			// Paths the CNI plugin, the runtime and pods name are the host's own, inside too.
			for _, key := range []string{"cniBin", "cniConf", "cniData", "netns", "podResources", "socketDir", "pods", "state"} {
				if m := mounts[p[key]]; m.MountPath != p[key] {
					t.Errorf("hostPaths.%s is mounted at %s, want the same path as on the host", key, m.MountPath)
				}
			}
			if m := mounts[p["netns"]]; m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer {
				t.Errorf("netns mount propagation = %v, want HostToContainer", m.MountPropagation)
			}
			if p["socketDir"] == p["pods"] || strings.HasPrefix(p["pods"], p["socketDir"]+"/") {
				t.Errorf("the socket directory %s holds the pods' directory %s", p["socketDir"], p["pods"])
			}
			var nad struct {
				Spec struct{ Config string } `json:"spec"`
			}
			r2 := render(t, append(tt.args, "--set", "networkAttachment.enabled=true")...)
			convertLoose(t, r2.all("NetworkAttachmentDefinition")[0], &nad)
			var conf map[string]any
			if err := json.Unmarshal([]byte(nad.Spec.Config), &conf); err != nil || conf["socket"] != f["socket"] {
				t.Errorf("the network's socket %v is not the agent's %s (%v)", conf["socket"], f["socket"], err)
			}
		})
	}
}

func mountsByHostPath(spec corev1.PodSpec, c corev1.Container) map[string]corev1.VolumeMount {
	host := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			host[v.Name] = v.HostPath.Path
		}
	}
	out := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if h, ok := host[m.Name]; ok {
			out[h] = m
		}
	}
	return out
}

// TestAgentFlags: the agent's newer flags are passed only when their value is set.
func TestAgentFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string
	}{
		{"none by default", nil, map[string]string{}},
		{"nics", []string{"--set", "agent.nics=mlx5_*", "--set", "agent.excludeNics=eth0"}, map[string]string{"nics": "mlx5_*", "exclude-nics": "eth0"}},
		{"rails auto", []string{"--set", "agent.rails=auto"}, map[string]string{"rails": "auto"}},
		{"rails from values", []string{"--set", "agent.railsConfig=x", "--set", "agent.rails=auto"}, map[string]string{"rails": "/etc/topolane/rails/rails"}},
		{"nri", []string{"--set", "agent.nri.enabled=true"}, map[string]string{"nri": "/var/run/nri/nri.sock"}},
		{"dirs", []string{"--set", "agent.cniBinDirs={/opt/cni/bin,/usr/libexec/cni}", "--set", "agent.netnsDirs={/run/crio/netns}"},
			map[string]string{"cni-bin-dirs": "/opt/cni/bin,/usr/libexec/cni", "netns-dirs": "/run/crio/netns"}},
	}
	newer := []string{"nics", "exclude-nics", "rails", "nri", "cni-bin-dirs", "netns-dirs"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.args...)
			spec := r.agent().Spec.Template.Spec
			f := flags(container(t, spec, "agent"))
			got := map[string]string{}
			for _, k := range newer {
				if v, ok := f[k]; ok {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("newer flags (-want +got):\n%s", diff)
			}
			mounts := mountsByHostPath(spec, container(t, spec, "agent"))
			for _, k := range []string{"cni-bin-dirs", "netns-dirs"} {
				for _, dir := range strings.Split(got[k], ",") {
					if _, ok := mounts[dir]; dir != "" && !ok {
						t.Errorf("--%s names %s, which is not mounted", k, dir)
					}
				}
			}
			if _, ok := got["nri"]; ok {
				if _, ok := mounts["/var/run/nri"]; !ok {
					t.Errorf("the NRI socket's directory is not mounted")
				}
			}
		})
	}
}

func TestAgentPrivileges(t *testing.T) {
	for _, privileged := range []bool{true, false} {
		r := render(t, "--set", fmt.Sprintf("agent.privileged=%v", privileged))
		spec := r.agent().Spec.Template.Spec
		sc := container(t, spec, "agent").SecurityContext
		isPrivileged := sc.Privileged != nil && *sc.Privileged
		var added []corev1.Capability
		if sc.Capabilities != nil {
			added = sc.Capabilities.Add
		}
		if isPrivileged != privileged || (!privileged && !slices.Equal(added, []corev1.Capability{"NET_ADMIN", "SYS_ADMIN"})) {
			t.Errorf("privileged=%v: securityContext %+v", privileged, sc)
		}
		if !spec.HostNetwork || spec.PriorityClassName != "system-node-critical" {
			t.Errorf("hostNetwork %v, priorityClassName %s", spec.HostNetwork, spec.PriorityClassName)
		}
		installer := container(t, spec, "install-cni").SecurityContext
		if installer.Privileged != nil || !slices.Equal(installer.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("the installer runs with %+v, want no capability", installer)
		}
	}
}

// TestAgentOnGPUNodes: NODE_NAME from the downward API, NVML through the NVIDIA runtime, GPU
// nodes only, the GPU taint tolerated.
func TestAgentOnGPUNodes(t *testing.T) {
	r := render(t, "--set", "agent.runtimeClassName=nvidia")
	spec := r.agent().Spec.Template.Spec
	env := map[string]corev1.EnvVar{}
	for _, e := range container(t, spec, "agent").Env {
		env[e.Name] = e
	}
	if e := env["NODE_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME = %+v", e)
	}
	if env["NVIDIA_VISIBLE_DEVICES"].Value != "all" || env["NVIDIA_DRIVER_CAPABILITIES"].Value != "utility" {
		t.Errorf("NVML env = %+v", env)
	}
	if spec.RuntimeClassName == nil || *spec.RuntimeClassName != "nvidia" {
		t.Errorf("runtimeClassName = %v", spec.RuntimeClassName)
	}
	term := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0]
	if term.Key != "nvidia.com/gpu.present" || !slices.Contains(spec.Tolerations, corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}) {
		t.Errorf("affinity %+v, tolerations %+v", term, spec.Tolerations)
	}
	agent := container(t, spec, "agent")
	if agent.LivenessProbe.HTTPGet.Path != "/healthz" || agent.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v %+v", agent.LivenessProbe, agent.ReadinessProbe)
	}
	if r := render(t, "--set", "agent.nvml=false"); slices.ContainsFunc(container(t, r.agent().Spec.Template.Spec, "agent").Env, func(e corev1.EnvVar) bool { return e.Name == "NVIDIA_VISIBLE_DEVICES" }) {
		t.Errorf("nvml=false still asks the NVIDIA runtime for devices")
	}
}

// TestEveryContainerRequestsResources, in every CI configuration.
func TestEveryContainerRequestsResources(t *testing.T) {
	for _, values := range ciValues(t) {
		r := render(t, "--values", values)
		for _, obj := range append(r.all("Deployment"), r.all("DaemonSet")...) {
			var d appsv1.Deployment // the pod template sits at the same place in both
			convert(t, map[string]any{"spec": map[string]any{"template": obj["spec"].(map[string]any)["template"]}}, &d)
			spec := d.Spec.Template.Spec
			for _, c := range append(spec.InitContainers, spec.Containers...) {
				if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
					t.Errorf("%s: %s container %s requests no CPU or memory", values, Name(obj), c.Name)
				}
			}
		}
	}
}

func TestNetworkAttachmentConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ns   []string
		want map[string]any
	}{
		{"defaults", nil, []string{"topolane-system"}, map[string]any{"cniVersion": "1.0.0", "name": "rdma", "type": "topolane-cni",
			"socket": "/run/topolane/agent/agent.sock", "ipam": map[string]any{"type": "host-local", "subnet": "10.56.0.0/16"}}},
		{"whereabouts, extra fields, a quote in a value, two namespaces",
			[]string{"--set", "networkAttachment.namespaces={training,research}", "--set", "networkAttachment.name=fabric",
				"--set-json", `networkAttachment.ipam={"type":"whereabouts","range":"10.57.0.0/16","exclude":["10.57.0.0/30"]}`,
				"--set-json", `networkAttachment.extraConfig={"mtu":9000,"note":"a \"quoted\" word"}`},
			[]string{"training", "research"}, map[string]any{"cniVersion": "1.0.0", "name": "fabric", "type": "topolane-cni",
				"socket": "/run/topolane/agent/agent.sock", "mtu": float64(9000), "note": `a "quoted" word`,
				"ipam": map[string]any{"type": "whereabouts", "range": "10.57.0.0/16", "exclude": []any{"10.57.0.0/30"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, append(tt.args, "--set", "networkAttachment.enabled=true")...)
			nads := r.all("NetworkAttachmentDefinition")
			var namespaces []string
			for _, obj := range nads {
				var nad struct {
					Metadata struct{ Name, Namespace string }
					Spec     struct{ Config string }
				}
				convertLoose(t, obj, &nad)
				namespaces = append(namespaces, nad.Metadata.Namespace)
				var conf map[string]any
				if err := json.Unmarshal([]byte(nad.Spec.Config), &conf); err != nil {
					t.Fatalf("spec.config is not JSON: %v\n%s", err, nad.Spec.Config)
				}
				if diff := cmp.Diff(tt.want, conf); diff != "" {
					t.Errorf("%s config (-want +got):\n%s", nad.Metadata.Namespace, diff)
				}
			}
			if diff := cmp.Diff(tt.ns, namespaces); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOptionalAPIsMustBeServed: a NetworkAttachmentDefinition or ServiceMonitor asked for on a
// cluster that lacks the API fails with what to do, instead of an install error later.
func TestOptionalAPIsMustBeServed(t *testing.T) {
	for _, tt := range []struct{ set, want string }{
		{"networkAttachment.enabled=true", "networkAttachment.enabled needs Multus"},
		{"serviceMonitor.enabled=true", "serviceMonitor.enabled needs the Prometheus Operator"},
	} {
		_, err := helm().TemplateWithout(newest, "--set", tt.set)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s without the API: %v", tt.set, err)
		}
	}
	out, err := helm().TemplateWithout(newest)
	if err != nil || strings.Contains(out, "NetworkAttachmentDefinition") || strings.Contains(out, "ServiceMonitor") {
		t.Errorf("defaults render optional kinds or fail: %v", err)
	}
}

// TestValuesSchemaRejects: values.schema.json stops mistakes before anything renders.
func TestValuesSchemaRejects(t *testing.T) {
	tests := []struct {
		set  []string
		want string
	}{
		{[]string{"--set", "agent.privileged=maybe"}, "/agent/privileged"},
		{[]string{"--set", "agnet.privileged=true"}, "additional properties 'agnet' not allowed"},
		{[]string{"--set", "extender.noPF=maybe"}, "/extender/noPF"},
		{[]string{"--set", "agent.hostPaths.state=var/lib/topolane"}, "/agent/hostPaths/state"},
		{[]string{"--set", "scheduler.schedulerNames=null"}, "missing property 'schedulerNames'"},
		{[]string{"--set", "scheduler.schedulerNames={Topolane}"}, "/scheduler/schedulerNames/0"},
		{[]string{"--set", "scheduler.image.digest=latest"}, "/scheduler/image/digest"},
		{[]string{"--set", "extender.port=0"}, "/extender/port"},
		{[]string{"--set", "extender.httpTimeout=5"}, "/extender/httpTimeout"},
		{[]string{"--set", "allocationPolicy.validationActions={Block}"}, "/allocationPolicy/validationActions/0"},
		{[]string{"--set", "gpuResources=null"}, "missing property 'gpuResources'"},
		{[]string{"--set", "networkAttachment.ipam.subnet=10.0.0.0/8"}, "/networkAttachment/ipam"},
		{[]string{"--set", "scheduler.resources.requests=null"}, "/scheduler/resources"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.set, " "), func(t *testing.T) {
			_, err := helm().Template(newest, tt.set...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
}

// TestNotesSayWhatToDoNext renders NOTES.txt (helm template leaves it out, and helm install
// cannot be told the Kubernetes version) through a copy of the chart that carries it in a
// ConfigMap.
func TestNotesSayWhatToDoNext(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topolane")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(chartDir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ tpl (.Files.Get \"files/notes.txt\") . | quote }}\n"
	for path, data := range map[string]string{"files/notes.txt": string(notes), "templates/notes-test.yaml": wrapper} {
		if err := os.WriteFile(filepath.Join(dir, path), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := Helm{Path: helmBinPath, Chart: dir}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"pod-security.kubernetes.io/enforce=privileged", "kubectl get nodetopologies", "schedulerName: topolane-scheduler",
			"k8s.v1.cni.cncf.io/networks: <your network", "accel.env", "kube-scheduler " + newest, "/debug/nodes/<node>"}},
		{[]string{"--set", "networkAttachment.enabled=true", "--set", "networkAttachment.namespaces={training}"},
			[]string{"k8s.v1.cni.cncf.io/networks: training/rdma"}},
	} {
		out, err := h.Template(newest, append(tt.args, "--show-only", "templates/notes-test.yaml")...)
		if err != nil {
			t.Fatal(err)
		}
		r := rendered{t: t}
		if r.objs, err = Objects(out); err != nil {
			t.Fatal(err)
		}
		var cm corev1.ConfigMap
		r.must("ConfigMap", "notes", &cm)
		for _, want := range tt.want {
			if !strings.Contains(cm.Data["notes"], want) {
				t.Errorf("NOTES lack %q:\n%s", want, cm.Data["notes"])
			}
		}
	}
}
