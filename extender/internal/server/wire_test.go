package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// The fast path must read every body exactly as encoding/json's Decoder does: the same
// ExtenderArgs, the same errors.

const node = `{"metadata":{"name":"n1","uid":"u1","labels":{"a":"b"}},"status":{"capacity":{"nvidia.com/gpu":"8"}}}`

var argsBodies = map[string]string{
	"names":                      `{"Pod":{"metadata":{"name":"p","annotations":{"topolane.io/nic":"pf"}}},"Nodes":null,"NodeNames":["a","b-1.example.com"]}`,
	"names first":                `{"NodeNames":["a"],"Pod":{"metadata":{"name":"p"}}}`,
	"white space everywhere":     " \t\r\n{ \"Pod\" : { } ,\n\"NodeNames\" :\t[ \"a\" , \"b\" ] } ",
	"empty names":                `{"Pod":{},"NodeNames":[]}`,
	"null names":                 `{"Pod":{},"NodeNames":null}`,
	"no names":                   `{"Pod":{}}`,
	"empty object":               `{}`,
	"null pod":                   `{"Pod":null,"NodeNames":["a"]}`,
	"nodes":                      `{"Pod":{},"Nodes":{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[` + node + `,{"metadata":{"name":"n2"}}]},"NodeNames":null}`,
	"nodes, empty items":         `{"Pod":{},"Nodes":{"items":[]}}`,
	"nodes, null items":          `{"Pod":{},"Nodes":{"items":null}}`,
	"nodes, Items":               `{"Pod":{},"Nodes":{"Items":[` + node + `]}}`,
	"nodes, items twice":         `{"Pod":{},"Nodes":{"items":[` + node + `],"items":[{"metadata":{"name":"n3"}}]}}`,
	"nodes, a null item":         `{"Pod":{},"Nodes":{"items":[null,` + node + `]}}`,
	"nodes, unknown key":         `{"Pod":{},"Nodes":{"more":[1,{"x":"]}"}],"items":[` + node + `]}}`,
	"nodes, bad item":            `{"Pod":{},"Nodes":{"items":[{"metadata":{"name":5}}]}}`,
	"escaped name":               `{"Pod":{},"NodeNames":["a\u0041","b\"c","d\\e","\ud83d\ude00"]}`,
	"bad surrogate":              `{"Pod":{},"NodeNames":["\ud800x"]}`,
	"non-ASCII name":             `{"Pod":{},"NodeNames":["nœud"]}`,
	"invalid UTF-8":              "{\"Pod\":{},\"NodeNames\":[\"a\xffb\"]}",
	"control byte in a name":     "{\"Pod\":{},\"NodeNames\":[\"a\x01b\"]}",
	"names twice":                `{"Pod":{},"NodeNames":["a"],"NodeNames":["b","c"]}`,
	"names then null":            `{"Pod":{},"NodeNames":["a"],"NodeNames":null}`,
	"pod twice (merged)":         `{"Pod":{"metadata":{"name":"p"}},"Pod":{"metadata":{"namespace":"ns"}}}`,
	"lower-case keys":            `{"pod":{"metadata":{"name":"p"}},"nodenames":["a"]}`,
	"upper-case keys":            `{"POD":{},"NODENAMES":["a"]}`,
	"Kelvin sign":                `{"Pod":{},"NodeNames":["a"],"NodeNameſ":["b"]}`,
	"unknown fields":             `{"Extra":{"NodeNames":["x"]},"Pod":{"metadata":{"name":"p"},"extra":[1,2.5e3,true,null]},"NodeNames":["a"],"More":"}"}`,
	"escaped key":                `{"Pod":{},"Node\u004eames":["a"]}`,
	"trailing data":              `{"Pod":{},"NodeNames":["a"]} {"x"`,
	"trailing comma":             `{"Pod":{},"NodeNames":["a"],}`,
	"trailing comma in names":    `{"Pod":{},"NodeNames":["a",]}`,
	"missing comma":              `{"Pod":{} "NodeNames":["a"]}`,
	"truncated":                  `{"Pod":{},"NodeNames":["a"`,
	"truncated pod":              `{"Pod":{"metadata":{`,
	"names a number":             `{"Pod":{},"NodeNames":5}`,
	"a name a number":            `{"Pod":{},"NodeNames":["a",5]}`,
	"pod a string":               `{"Pod":"p","NodeNames":["a"]}`,
	"pod with a wrong type":      `{"Pod":{"metadata":{"name":5}},"NodeNames":["a"]}`,
	"pod with a bad quantity":    `{"Pod":{"spec":{"containers":[{"resources":{"limits":{"nvidia.com/gpu":"x"}}}]}}}`,
	"nullx":                      `{"Pod":nullx}`,
	"top-level null":             `null`,
	"top-level array":            `["a"]`,
	"empty body":                 ``,
	"a bare string":              `"x"`,
	"byte order mark":            "\ufeff{}",
	"brackets in a pod string":   `{"Pod":{"metadata":{"name":"p]}{\"","annotations":{"a":"\\"}}},"NodeNames":["a"]}`,
	"pod with mismatched braces": `{"Pod":{"metadata":{"name":"p"]},"NodeNames":["a"]}`,
}

func TestArgsReadAsEncodingJSON(t *testing.T) {
	for name, body := range argsBodies {
		t.Run(name, func(t *testing.T) { sameArgs(t, []byte(body)) })
	}
}

func FuzzArgs(f *testing.F) {
	for _, body := range argsBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(sameArgs)
}

// sameArgs reads body through readArgs and through the Decoder the server used before, and
// fails unless both read the same arguments or answer the same error.
func sameArgs(t *testing.T, body []byte) {
	var want extenderv1.ExtenderArgs
	wantErr := json.NewDecoder(bytes.NewReader(body)).Decode(&want)
	for _, length := range []int64{int64(len(body)), -1} { // with and without Content-Length
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/filter", bytes.NewReader(body))
		r.ContentLength = length
		q := new(request) // and then one recycled
		if length < 0 {
			q = requests.Get().(*request)
		}
		ok := q.decodeArgs(w, r)
		if wantErr != nil {
			msg := fmt.Sprintf(`{"error":%q}`, "malformed JSON: "+wantErr.Error())
			if ok || w.Code != http.StatusBadRequest || !sameJSONText(w.Body.String(), msg) {
				t.Fatalf("%q: answered %v %d %s, want 400 %s", body, ok, w.Code, w.Body, msg)
			}
			continue
		}
		if !ok {
			t.Fatalf("%q: refused (%d %s), encoding/json reads it", body, w.Code, w.Body)
		}
		if diff := cmp.Diff(describe(t, &want), describe(t, &q.args)); diff != "" {
			t.Fatalf("%q (-encoding/json +readArgs):\n%s", body, diff)
		}
		q.release()
	}
}

// describe writes args out with what JSON does not show: whether NodeNames points to a nil slice.
func describe(t *testing.T, args *extenderv1.ExtenderArgs) string {
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s\nnames nil: %v", b, args.NodeNames != nil && *args.NodeNames == nil)
}

func sameJSONText(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && cmp.Equal(x, y)
}

func TestBodyOverTheLimitAfterAValue(t *testing.T) {
	// encoding/json's Decoder stops at the end of the first value: what follows it, even past
	// the limit, is never read.
	body := append([]byte(`{"Pod":{},"NodeNames":["a"]}`), bytes.Repeat([]byte(" "), MaxBodyBytes)...)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/filter", bytes.NewReader(body))
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	q, ok := readArgs(w, r)
	if !ok || len(*q.args.NodeNames) != 1 {
		t.Fatalf("%v %d %s", ok, w.Code, w.Body)
	}
}

func TestPodsAreTheirOwn(t *testing.T) {
	body := []byte(`{"Pod":{"metadata":{"name":"p","annotations":{"a":"b"}}},"NodeNames":["a"]}`)
	read := func() *corev1.Pod {
		q, ok := readArgs(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/filter", bytes.NewReader(body)))
		if !ok {
			t.Fatal("refused")
		}
		return q.args.Pod
	}
	first := read()
	first.Annotations["a"] = "changed"
	if second := read(); second.Annotations["a"] != "b" {
		t.Errorf("a request saw another's change to its pod: %v", second.Annotations)
	}
}

// The answers must be byte for byte what json.NewEncoder(w).Encode writes: here the answers
// are not of a request's names, so failed nodes come sorted, as encoding/json sorts them
// (TestFailedNodesInTheRequestsOrder covers the request's order).

var oddStrings = []string{"", "node-1", `a"b\c`, "<script>&", "\b\f\n\r\t\x00\x1f\x7f", "nœud", "\u2028\u2029", "a\xffb\xc3", "\U0001F600", "\ufffd"}

func TestFilterAnswersAsEncodingJSON(t *testing.T) {
	names := append([]string{}, oddStrings...)
	failed := extenderv1.FailedNodesMap{}
	for i, s := range oddStrings {
		failed[s+"x"] = "topolane: " + oddStrings[len(oddStrings)-1-i]
	}
	for _, res := range []*extenderv1.ExtenderFilterResult{
		{},
		{NodeNames: &[]string{}, FailedNodes: extenderv1.FailedNodesMap{}, FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{}},
		{NodeNames: new([]string), Error: "<bad>"},
		{NodeNames: &names, FailedNodes: failed, FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{"z": "y", "a": "b"}},
		{Nodes: &corev1.NodeList{}},
		{Nodes: &corev1.NodeList{Items: []corev1.Node{}}},
		{Nodes: &corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList"}, ListMeta: metav1.ListMeta{ResourceVersion: "9"}, Items: []corev1.Node{*testNode("a<b")}}},
	} {
		q := new(request)
		got, err := q.appendFilterResult(nil, res)
		if err != nil {
			t.Fatal(err)
		}
		if want := encoded(t, res); string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

func TestPriorityAnswersAsEncodingJSON(t *testing.T) {
	var list extenderv1.HostPriorityList
	for i, s := range oddStrings {
		list = append(list, extenderv1.HostPriority{Host: s, Score: int64(i*7 - 20)})
	}
	for _, l := range []*extenderv1.HostPriorityList{nil, new(extenderv1.HostPriorityList), {}, &list} {
		if got, want := string(appendPriorities(nil, l)), encoded(t, l); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString(nil, s))+"\n", encoded(t, s); got != want {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	})
}

func encoded(t *testing.T, v any) string {
	var b strings.Builder
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func testNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "uid-" + "name", Labels: map[string]string{"x": "<y>"}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}}}
}

// TestNodesAnsweredAsSent: a filter answer with full Node objects carries each passing Node as
// the request spelt it, which for the JSON the scheduler writes is what encoding/json would
// write; a Node the request did not carry (another name or UID) is encoded.
func TestNodesAnsweredAsSent(t *testing.T) {
	nodes := []corev1.Node{*testNode("n0"), *testNode("n1"), *testNode("n2")}
	compact, err := json.Marshal(extenderv1.ExtenderArgs{Pod: &corev1.Pod{}, Nodes: &corev1.NodeList{Items: nodes}})
	if err != nil {
		t.Fatal(err)
	}
	spaced := bytes.ReplaceAll(compact, []byte(`"status":{`), []byte(`"unknown": 1, "status" : {`))
	for _, body := range [][]byte{compact, spaced} {
		q, ok := readArgs(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/filter", bytes.NewReader(body)))
		if !ok || len(q.items) != len(nodes) {
			t.Fatalf("%s: %v, %d spans", body, ok, len(q.items))
		}
		in := q.args.Nodes.Items
		changed := in[1]
		changed.UID = "another"
		res := &extenderv1.ExtenderFilterResult{Nodes: &corev1.NodeList{Items: []corev1.Node{in[0], changed, in[2], *testNode("elsewhere")}}}
		got, err := q.appendFilterResult(nil, res)
		if err != nil {
			t.Fatal(err)
		}
		want := encoded(t, res)
		switch {
		case bytes.Equal(body, compact) && string(got) != want:
			t.Errorf("got  %s\nwant %s", got, want)
		case bytes.Equal(body, spaced) && bytes.Count(got, []byte(`"unknown": 1`)) != 2: // in[0] and in[2]
			t.Errorf("the request's spelling is not kept: %s", got)
		}
		var decoded extenderv1.ExtenderFilterResult
		if err := json.Unmarshal(got, &decoded); err != nil || encoded(t, &decoded) != want {
			t.Errorf("the scheduler reads %s (%v)\nwant %s", encoded(t, &decoded), err, want)
		}
		q.release()
	}
}
