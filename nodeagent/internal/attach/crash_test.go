package attach_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

const childEnv = "TOPOLANE_ATTACH_CHILD"

// childJob is what the test binary, run again as the agent, is to do and where to die.
type childJob struct {
	Fixture   attachtest.Fixture `json:"fixture"`
	Request   attach.Request     `json:"request"`
	Op        string             `json:"op"` // add, or del (an ADD, then a DEL that is killed)
	CrashOp   string             `json:"crashOp"`
	CrashStep attach.Step        `json:"crashStep"`
	// CrashDevice is the device after whose step the agent dies (-1: a step of the whole).
	CrashDevice int `json:"crashDevice"`
	// RDMANetnsMode is the node's RDMA namespace mode ("" for the fixture's).
	RDMANetnsMode string `json:"rdmaNetnsMode,omitempty"`
}

// killedAtStep is the exit status of an agent killed by the hook.
const killedAtStep = 3

func child() int {
	var job childJob
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	node := topologytest.DGXH100().Node()
	node.RDMANetnsMode = job.RDMANetnsMode
	att := job.Fixture.Attacher(node)
	att.AfterStep = func(op string, s attach.Step, device int) {
		if op == job.CrashOp && s == job.CrashStep && (device == job.CrashDevice || device == -1) {
			os.Exit(killedAtStep) // no deferred cleanup: as if killed
		}
	}
	ctx := context.Background()
	if _, err := att.Add(ctx, job.Request); err != nil {
		fmt.Fprintln(os.Stderr, "ADD:", err)
		return 1
	}
	if job.Op == "del" {
		if err := att.Del(ctx, job.Request); err != nil {
			fmt.Fprintln(os.Stderr, "DEL:", err)
			return 1
		}
	}
	return 0
}

// runKilled runs an agent that is killed after the step, and reports whether it was.
func runKilled(t *testing.T, job childJob) bool {
	t.Helper()
	data, _ := json.Marshal(job)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok && exit.ExitCode() == killedAtStep {
		return true
	}
	if err != nil {
		t.Fatalf("agent failed before step %s of %s: %v\n%s", job.CrashStep, job.CrashOp, err, out)
	}
	return false
}

// stepsOf are the steps after which an ADD, or the undo of a DEL, can be killed.
var stepsOf = map[string][]attach.Step{
	"add": {attach.StepIPAM, attach.StepHostName, attach.StepVFConfig, attach.StepMoved, attach.StepConfigured, attach.StepShaped, attach.StepAccel},
	"del": {attach.StepAccel, attach.StepShaped, attach.StepHostName, attach.StepVFConfig, attach.StepIPAM},
}

// TestKilledAtEveryStep kills the agent after each step of ADD, and of DEL: for a pod of every
// GPU (8 PFs in one ADD), between its 4th and 5th device; for a VF and a macvlan, after their one
// device. A restarted agent's reconcile must leave the host as it was: names, MACs, aliases,
// states, no IP reserved, no file, no journal, and nothing in the pod's namespace.
func TestKilledAtEveryStep(t *testing.T) {
	pods := []struct {
		name        string
		gpus        []int
		annotations map[string]string
		device      int
		rdmaMode    string
	}{
		{"8pf", allGPUs, nil, 3, ""},
		// With bandwidth limits: the tbf, the ifb and the VF's ceiling are undone at every kill too.
		{"vf", []int{0}, map[string]string{"topolane.io/nic": "vf", "kubernetes.io/egress-bandwidth": "100M", "kubernetes.io/ingress-bandwidth": "100M"}, 0, ""},
		{"macvlan", []int{1}, map[string]string{"topolane.io/nic": "vf"}, 0, ""}, // NIC1 has no VFs
		// RDMA devices move with their netdevs: killed after the first device's step, the second's
		// RDMA device has not left the host, and undoing its move must not fail.
		{"2pf-rdma-exclusive", []int{0, 1}, map[string]string{"topolane.io/nic": "pf"}, 0, topology.RDMANetnsExclusive},
	}
	for _, pod := range pods {
		for _, op := range []string{"add", "del"} {
			for _, step := range stepsOf[op] {
				t.Run(fmt.Sprintf("%s/%s/%s", pod.name, op, step), func(t *testing.T) {
					e := newEnv(t)
					if pod.rdmaMode != "" {
						e.Node.RDMANetnsMode = pod.rdmaMode
						e.SetRDMANetnsMode(pod.rdmaMode)
					}
					e.AddPod(pod.name, pod.gpus, pod.annotations)
					podNS := e.NewPodNS()
					before := e.Links(e.Fx.HostNS)
					killed := runKilled(t, childJob{Fixture: *e.Fx, Request: e.Request(pod.name, podNS), Op: op, CrashOp: op, CrashStep: step, CrashDevice: pod.device,
						RDMANetnsMode: pod.rdmaMode})
					if !killed && op == "add" {
						t.Fatalf("the agent was not killed after %s", step)
					}
					undone, err := e.Fx.Attacher(e.Node).Reconcile(context.Background())
					if err != nil {
						t.Fatalf("reconcile: %v", err)
					}
					if op == "del" && killed && len(undone) != 1 {
						t.Errorf("reconcile undid %v, want the interrupted DEL", undone)
					}
					if after := e.Links(e.Fx.HostNS); !slices.Equal(before, after) {
						t.Errorf("host links changed:\nbefore %v\nafter  %v", before, after)
					}
					if left := e.Links(podNS.Path()); len(left) != 1 { // lo
						t.Errorf("left in the pod's namespace: %v", left)
					}
					if left := e.Leftovers(); len(left) > 0 {
						t.Errorf("left behind: %v", left)
					}
				})
			}
		}
	}
}
