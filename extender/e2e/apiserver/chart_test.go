package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	memory "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
	"k8s.io/kubernetes/pkg/capabilities"
	"k8s.io/kubernetes/test/integration/framework"
	"sigs.k8s.io/yaml"

	"github.com/topolane/topolane/extender/e2e/kubesched"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

const (
	// The chart is rendered for the Kubernetes version this module's API server and scheduler are.
	chartKubeVersion = "v1.37.2"
	chartNS          = "topolane-system"
	repoRoot         = "../../.."
	gpuNode          = "dgx-h100" // the agent discovers nodeagent/testdata/sysfs/dgx-h100
	schedulerSA      = "topolane-scheduler"
	extenderSA       = "topolane-extender"
	agentSA          = "topolane-agent"
)

// TestChartOnRealAPIServer installs the rendered chart into a real API server with RBAC on,
// runs the agent, the extender and the real kube-scheduler each under a token of its own
// chart ServiceAccount, schedules a GPU pod, and shows what each identity may not do.
func TestChartOnRealAPIServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startSecuredAPIServer(t, ctx)
	chart := renderChart(t)
	installChart(t, ctx, c, chart)
	waitAllocationPolicy(t, ctx, c)
	createNode(t, ctx, c.client, gpuNode, 8)
	createNode(t, ctx, c.client, "cpu-1", 0)

	ext := startChartExtender(t, ctx, c.cluster, chart, c.token(t, ctx, extenderSA, nil))
	schedCfg, err := kubesched.DecodeConfig([]byte(chart.configMap(t, "topolane-scheduler").Data["scheduler-config.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	schedCfg.Extenders[0].URLPrefix = ext
	if err := kubesched.StartConfigured(ctx, c.clientFor(t, c.token(t, ctx, schedulerSA, nil)).client, schedCfg, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	agentPod := c.createAgentPod(t, ctx)
	agentToken := c.token(t, ctx, agentSA, &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: agentPod.Name, UID: agentPod.UID})
	runAgent(t, ctx, c, chart, agentToken)
	waitExtenderSees(t, ext, gpuNode)

	pod := extendertest.Pod(ns, "train-0", 8)
	pod.UID = ""
	pod.Spec.SchedulerName = schedCfg.Profiles[0].SchedulerName
	if _, err := c.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bound := waitBound(t, ctx, c.client, pod.Name)
	a, err := v1alpha1.ParseAllocation(bound.Annotations[v1alpha1.AnnotationAllocation])
	if bound.Spec.NodeName != gpuNode || err != nil || len(a.Devices) != 8 || a.Devices[0].Kind != placement.KindPF {
		t.Fatalf("pod on %q with allocation %q (%v), want whole PFs on %s", bound.Spec.NodeName, bound.Annotations[v1alpha1.AnnotationAllocation], err, gpuNode)
	}

	t.Run("RBAC denies what each identity does not need", func(t *testing.T) { checkLeastPrivilege(t, ctx, c) })
	t.Run("only the extender writes the allocation", func(t *testing.T) { checkAllocationPolicy(t, ctx, c, bound) })
	t.Run("the agent writes only its own node", func(t *testing.T) { checkAgentNodePolicy(t, ctx, c, agentToken, bound) })
}

// securedCluster is a cluster whose API server authorizes with RBAC.
type securedCluster struct{ cluster }

func startSecuredAPIServer(t *testing.T, ctx context.Context) securedCluster {
	// --allow-privileged sets a process-wide value, once: an API server started earlier in this
	// process (another test) would have fixed it.
	capabilities.ResetForTest()
	t.Cleanup(capabilities.ResetForTest)
	server := kubeapiservertesting.StartTestServerOrDie(t, kubeapiservertesting.NewDefaultTestServerOptions(),
		[]string{"--authorization-mode=RBAC", "--allow-privileged=true", "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition,Priority"}, framework.SharedEtcd())
	t.Cleanup(server.TearDownFn)
	c := securedCluster{cluster{cfg: server.ClientConfig, client: kubernetes.NewForConfigOrDie(server.ClientConfig), dyn: dynamic.NewForConfigOrDie(server.ClientConfig)}}
	for _, name := range []string{ns, chartNS} {
		if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// token asks the API server for a token of one of the chart's ServiceAccounts.
func (c securedCluster) token(t *testing.T, ctx context.Context, sa string, bound *authenticationv1.BoundObjectReference) string {
	t.Helper()
	hour := int64(3600)
	tr, err := c.client.CoreV1().ServiceAccounts(chartNS).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour, BoundObjectRef: bound}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	return tr.Status.Token
}

// clientFor is a cluster whose clients carry only token: no client certificate, no other token.
func (c securedCluster) clientFor(t *testing.T, token string) cluster {
	t.Helper()
	cfg := rest.AnonymousClientConfig(c.cfg)
	cfg.BearerToken = token
	return cluster{cfg: cfg, client: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg)}
}

// createAgentPod stands in for the DaemonSet's pod on the GPU node: the agent's token is bound
// to it, so it names the node.
func (c securedCluster) createAgentPod(t *testing.T, ctx context.Context) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "topolane-agent-x1", Namespace: chartNS},
		Spec: corev1.PodSpec{NodeName: gpuNode, ServiceAccountName: agentSA, Containers: []corev1.Container{{Name: "agent", Image: "topolane-agent"}}}}
	created, err := c.client.CoreV1().Pods(chartNS).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// manifests is the rendered chart.
type manifests []*unstructured.Unstructured

// renderChart renders the chart with the pinned helm (the Makefile passes it as HELM) for this
// module's Kubernetes version.
func renderChart(t *testing.T) manifests {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run `make e2e`, which installs the pinned helm into .tools/ and passes it here")
	}
	out, err := exec.Command(helm, "template", "topolane", filepath.Join(repoRoot, "charts", "topolane"), "--namespace", chartNS,
		"--kube-version", chartKubeVersion, "--include-crds").CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var objs manifests
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if m != nil {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

func (m manifests) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	for _, u := range m {
		if u.GetKind() == "ConfigMap" && u.GetName() == name {
			var cm corev1.ConfigMap
			if err := runtimeConvert(u, &cm); err != nil {
				t.Fatal(err)
			}
			return &cm
		}
	}
	t.Fatalf("the chart renders no ConfigMap %s", name)
	return nil
}

func (m manifests) agentArgs(t *testing.T) []string { return m.args(t, "DaemonSet", "agent") }

func (m manifests) extenderArgs(t *testing.T) []string { return m.args(t, "Deployment", "extender") }

// args are the rendered arguments of a container of the workload of kind.
func (m manifests) args(t *testing.T, kind, container string) []string {
	t.Helper()
	for _, u := range m {
		if u.GetKind() == kind {
			containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				if c := c.(map[string]any); c["name"] == container {
					args, _, _ := unstructured.NestedStringSlice(c, "args")
					return args
				}
			}
		}
	}
	t.Fatalf("the chart renders no %s container in a %s", container, kind)
	return nil
}

func runtimeConvert(u *unstructured.Unstructured, out any) error {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// installChart creates every rendered object, CRDs first, refusing unknown fields as
// kubectl --validate=strict does.
func installChart(t *testing.T, ctx context.Context, c securedCluster, objs manifests) {
	t.Helper()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(c.cfg)))
	var others []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() != "CustomResourceDefinition" {
			others = append(others, u)
			continue
		}
		createObject(t, ctx, c, mapper, u)
		waitEstablished(t, ctx, c.cfg, u.GetName())
	}
	mapper.Reset()
	kinds := map[string]int{}
	for _, u := range others {
		createObject(t, ctx, c, mapper, u)
		kinds[u.GetKind()]++
	}
	for _, k := range []string{"ServiceAccount", "Secret", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Deployment", "DaemonSet", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		if kinds[k] == 0 {
			t.Errorf("the chart rendered no %s", k)
		}
	}
}

func createObject(t *testing.T, ctx context.Context, c securedCluster, mapper *restmapper.DeferredDiscoveryRESTMapper, u *unstructured.Unstructured) {
	t.Helper()
	gvk := u.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s %s: %v", gvk, u.GetName(), err)
	}
	res := c.dyn.Resource(mapping.Resource)
	var client dynamic.ResourceInterface = res
	if ns := u.GetNamespace(); ns != "" {
		client = res.Namespace(ns)
	}
	if _, err := client.Create(ctx, u, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}); err != nil {
		t.Fatalf("the API server refuses the chart's %s %s: %v", gvk.Kind, u.GetName(), err)
	}
}

func waitEstablished(t *testing.T, ctx context.Context, cfg *rest.Config, name string) {
	t.Helper()
	crds := apiextensions.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		crd, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", name, err)
	}
}

// startChartExtender serves an extender whose every API call carries the extender's token.
// startChartExtender builds topolane-extender and runs it with the chart's arguments, its
// addresses moved to free loopback ports, and a kubeconfig that holds only the extender's token.
// It returns the extender's URL once it is ready (its store has taken in the first lists).
func startChartExtender(t *testing.T, ctx context.Context, c cluster, chart manifests, token string) string {
	t.Helper()
	dir := t.TempDir()
	bin := buildBinary(t, dir, "./extender/cmd/topolane-extender")
	kubeconfig := writeKubeconfig(t, c.cfg, token, filepath.Join(dir, "kubeconfig"))
	listen, health := freeAddr(t), freeAddr(t)
	args := []string{"--kubeconfig", kubeconfig}
	for _, a := range chart.extenderArgs(t) {
		flag, _, _ := strings.Cut(a, "=")
		switch flag {
		case "--listen":
			a = "--listen=" + listen
		case "--health-listen":
			a = "--health-listen=" + health
		}
		args = append(args, a)
	}
	startProcess(t, ctx, bin, args, "http://"+health+"/readyz")
	return "http://" + listen
}

// buildBinary builds a command of the repository into dir.
func buildBinary(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startProcess runs bin until the test ends and waits until ready answers 200.
func startProcess(t *testing.T, ctx context.Context, bin string, args []string, ready string) {
	t.Helper()
	var logs bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), logs.String())
		}
	})
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get(ready)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%s not ready under its ServiceAccount (RBAC?): %v\n%s", filepath.Base(bin), err, logs.String())
	}
}

// runAgent builds topolane-agent and runs it with the chart's arguments, its host paths moved
// into a temporary directory, the DGX H100 fixture as its sysfs, and a kubeconfig that holds
// only the agent's token. It returns when the agent is ready (discovered and published).
func runAgent(t *testing.T, ctx context.Context, c securedCluster, chart manifests, token string) {
	t.Helper()
	dir := t.TempDir()
	bin := buildBinary(t, dir, "./nodeagent/cmd/topolane-agent")
	kubeconfig := writeKubeconfig(t, c.cfg, token, filepath.Join(dir, "kubeconfig"))
	health := freeAddr(t)
	sysfs, err := filepath.Abs(filepath.Join(repoRoot, "nodeagent", "testdata", "sysfs", gpuNode))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--node-name", gpuNode, "--kubeconfig", kubeconfig}
	for _, a := range chart.agentArgs(t)[1:] {
		flag, value, _ := strings.Cut(a, "=")
		switch {
		case flag == "--sysfs-root":
			value = sysfs
		case flag == "--listen":
			value = health
		case strings.HasPrefix(value, "/"):
			value = filepath.Join(dir, "host", value)
		}
		args = append(args, flag+"="+value)
	}
	startProcess(t, ctx, bin, args, "http://"+health+"/readyz")
	nt, err := c.dyn.Resource(v1alpha1.GroupVersionResource).Get(ctx, gpuNode, metav1.GetOptions{})
	if err != nil || len(nt.GetOwnerReferences()) != 1 || nt.GetOwnerReferences()[0].Kind != "Node" {
		t.Fatalf("the agent's NodeTopology %s: %v %v", gpuNode, err, nt)
	}
}

func writeKubeconfig(t *testing.T, cfg *rest.Config, token, path string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData, TLSServerName: cfg.ServerName}
	kc.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "agent"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitExtenderSees waits until the extender holds the node's topology: a pod filtered before
// that would wait for the scheduler's next retry.
func waitExtenderSees(t *testing.T, ext string, node string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get(ext + "/debug/nodes/" + node)
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		var d struct{ GPUs, PFsFree int }
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&d) == nil && d.GPUs == 8 && d.PFsFree > 0, nil
	})
	if err != nil {
		t.Fatalf("the extender never saw %s's NodeTopology: %v", node, err)
	}
}

// access is one question to the authorizer: may this ServiceAccount do this?
type access struct {
	sa                                       string
	verb, group, resource, subresource, name string
	namespace                                string
	want                                     bool
}

func checkLeastPrivilege(t *testing.T, ctx context.Context, c securedCluster) {
	lease := "topolane-scheduler"
	for _, a := range []access{
		// What each needs (so that a denial below is RBAC's answer, not a broken question).
		{sa: agentSA, verb: "update", group: v1alpha1.Group, resource: v1alpha1.Resource, name: gpuNode, want: true},
		{sa: extenderSA, verb: "create", resource: "pods", subresource: "binding", namespace: ns, want: true},
		{sa: schedulerSA, verb: "update", group: "coordination.k8s.io", resource: "leases", name: lease, namespace: chartNS, want: true},
		// The agent does not place pods, nor create or delete them, nor read secrets.
		{sa: agentSA, verb: "create", resource: "pods", subresource: "binding", namespace: ns},
		{sa: agentSA, verb: "create", resource: "pods", namespace: ns},
		{sa: agentSA, verb: "delete", resource: "pods", namespace: ns},
		{sa: agentSA, verb: "delete", group: v1alpha1.Group, resource: v1alpha1.Resource, name: gpuNode},
		{sa: agentSA, verb: "list", resource: "secrets", namespace: chartNS},
		// The extender does not write topologies, nodes or pods (its reservation travels on the
		// Binding).
		{sa: extenderSA, verb: "create", group: v1alpha1.Group, resource: v1alpha1.Resource},
		{sa: extenderSA, verb: "update", group: v1alpha1.Group, resource: v1alpha1.Resource, name: gpuNode},
		{sa: extenderSA, verb: "patch", resource: "nodes", name: gpuNode},
		{sa: extenderSA, verb: "delete", resource: "pods", namespace: ns},
		{sa: extenderSA, verb: "update", resource: "pods", namespace: ns},
		{sa: extenderSA, verb: "patch", resource: "pods", namespace: ns},
		// The scheduler does not write topologies nor annotate pods, nor take another's lease.
		{sa: schedulerSA, verb: "update", group: v1alpha1.Group, resource: v1alpha1.Resource, name: gpuNode},
		{sa: schedulerSA, verb: "patch", resource: "pods", namespace: ns},
		{sa: schedulerSA, verb: "update", group: "coordination.k8s.io", resource: "leases", name: "someone-else", namespace: chartNS},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + chartNS + ":" + a.sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + chartNS, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource,
				Subresource: a.subresource, Name: a.name, Namespace: a.namespace}}}
		got, err := c.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		what := strings.TrimSuffix(fmt.Sprintf("%s %s %s/%s", a.sa, a.verb, a.resource, a.subresource), "/")
		if got.Status.Allowed != a.want {
			t.Errorf("%s: allowed %v, want %v (%s)", what, got.Status.Allowed, a.want, got.Status.Reason)
		} else {
			t.Logf("%s: allowed=%v", what, got.Status.Allowed)
		}
	}
}

// checkAllocationPolicy: a pod created with the annotation, a change of it, its removal and a
// Binding carrying it are refused with the policy's message for anyone but the extender (whose
// Binding with it the test's bind proved); other annotations stay free.
func checkAllocationPolicy(t *testing.T, ctx context.Context, c securedCluster, bound *corev1.Pod) {
	forged := extendertest.Pod(ns, "forged", 8, v1alpha1.AnnotationAllocation, bound.Annotations[v1alpha1.AnnotationAllocation])
	forged.UID = ""
	_, err := c.client.CoreV1().Pods(ns).Create(ctx, forged, metav1.CreateOptions{})
	expectPolicyDenial(t, "a user creating a pod that carries a copied allocation", err)

	agent := c.clientFor(t, c.token(t, ctx, agentSA, &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "topolane-agent-x1", UID: agentPodUID(t, ctx, c)}))
	_, err = agent.client.CoreV1().Pods(ns).Patch(ctx, bound.Name, types.MergePatchType, annotationPatch(v1alpha1.AnnotationAllocation, `{"node":"dgx-h100","kind":"vf"}`), metav1.PatchOptions{})
	expectPolicyDenial(t, "the agent changing the allocation", err)
	_, err = c.client.CoreV1().Pods(ns).Patch(ctx, bound.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"topolane.io/allocation":null}}}`), metav1.PatchOptions{})
	expectPolicyDenial(t, "a cluster admin removing the allocation", err)

	if _, err := agent.client.CoreV1().Pods(ns).Patch(ctx, bound.Name, types.MergePatchType, annotationPatch("topolane.io/attachment", `{"kind":"pf"}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("the agent writing its own annotation was refused: %v", err)
	}
	unbound := extendertest.Pod(ns, "waiting", 1)
	unbound.UID, unbound.Spec.SchedulerName = "", "someone-else"
	if _, err := c.client.CoreV1().Pods(ns).Create(ctx, unbound, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a pod without the annotation was refused: %v", err)
	}
	forgedBinding := extendertest.Binding(ns, unbound.Name, "", "cpu-1", `{"node":"cpu-1","kind":"vf"}`)
	err = c.client.CoreV1().Pods(ns).Bind(ctx, forgedBinding, metav1.CreateOptions{})
	expectPolicyDenial(t, "a cluster admin binding a pod with an allocation", err)
}

// waitAllocationPolicy waits until the API server enforces the allocation policy (it loads
// policies a moment after they are created), so that the bind that follows proves the
// extender passes it.
func waitAllocationPolicy(t *testing.T, ctx context.Context, c securedCluster) {
	t.Helper()
	probe := extendertest.Pod(ns, "probe", 1, v1alpha1.AnnotationAllocation, `{"node":"dgx-h100","kind":"vf"}`)
	probe.UID = ""
	var err error
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err = c.client.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil, nil
	})
	expectPolicyDenial(t, "a cluster admin creating a pod with a made-up allocation", err)
}

func agentPodUID(t *testing.T, ctx context.Context, c securedCluster) types.UID {
	t.Helper()
	pod, err := c.client.CoreV1().Pods(chartNS).Get(ctx, "topolane-agent-x1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod.UID
}

func annotationPatch(key, value string) []byte {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	return patch
}

func expectPolicyDenial(t *testing.T, what string, err error) {
	t.Helper()
	const message = "only topolane's extender (system:serviceaccount:topolane-system:topolane-extender) may set, change or remove the pod annotation topolane.io/allocation"
	if err == nil || !strings.Contains(err.Error(), message) {
		t.Errorf("%s: %v, want the policy's denial", what, err)
		return
	}
	t.Logf("%s: denied: %v", what, err)
}

// checkAgentNodePolicy: the agent's token names its node; it may not write another node's
// NodeTopology nor mark another Node, and a token without a node is refused.
func checkAgentNodePolicy(t *testing.T, ctx context.Context, c securedCluster, agentToken string, bound *corev1.Pod) {
	agent := c.clientFor(t, agentToken)
	other := extendertest.Topology("cpu-1", topologytest.NoSRIOV())
	u, err := v1alpha1.ToUnstructured(other)
	if err != nil {
		t.Fatal(err)
	}
	_, err = agent.dyn.Resource(v1alpha1.GroupVersionResource).Create(ctx, u, metav1.CreateOptions{})
	expectDenial(t, "the agent on dgx-h100 creating cpu-1's NodeTopology", err, "topolane-agent on node dgx-h100 may write only its own NodeTopology, not cpu-1")
	_, err = agent.client.CoreV1().Nodes().Patch(ctx, "cpu-1", types.MergePatchType, annotationPatch("topolane.io/topology-hash", "x"), metav1.PatchOptions{})
	expectDenial(t, "the agent on dgx-h100 marking Node cpu-1", err, "may write only its own Node, not cpu-1")
	if _, err := agent.client.CoreV1().Nodes().Patch(ctx, gpuNode, types.MergePatchType, annotationPatch("topolane.io/topology-hash", "y"), metav1.PatchOptions{}); err != nil {
		t.Errorf("the agent marking its own Node was refused: %v", err)
	}
	unboundAgent := c.clientFor(t, c.token(t, ctx, agentSA, nil))
	_, err = unboundAgent.client.CoreV1().Nodes().Patch(ctx, gpuNode, types.MergePatchType, annotationPatch("topolane.io/topology-hash", "z"), metav1.PatchOptions{})
	expectDenial(t, "the agent's account with a token bound to no pod", err, "credentials do not name its node")
	_, err = unboundAgent.client.CoreV1().Pods(ns).Patch(ctx, bound.Name, types.MergePatchType, annotationPatch("topolane.io/attachment", "{}"), metav1.PatchOptions{})
	expectDenial(t, "the agent's account annotating a pod without naming its node", err, "credentials do not name its node")
}

func expectDenial(t *testing.T, what string, err error, message string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), message) {
		t.Errorf("%s: %v, want a denial saying %q", what, err, message)
		return
	}
	t.Logf("%s: denied: %v", what, err)
}
