package server

import (
	"bytes"
	"io"
	"net/http"
	"sync"

	corev1 "k8s.io/api/core/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// A filter or prioritize request carries up to 5,000 node names; decoding them with
// encoding/json, a string allocation each, cost more than deciding. request reads the body
// once and takes the names straight from it. It decodes only what it can prove encoding/json
// would decode the same way: an object with the keys Pod, Nodes and NodeNames spelt exactly so,
// each at most once, the names plain ASCII without escapes. Anything else (unknown or
// differently cased keys, duplicates, escapes, bad JSON, a body over the limit) goes to
// encoding/json's Decoder over the same bytes, so answers and error messages stay exactly
// what they were. The Pod and Nodes objects are decoded by encoding/json in both paths (the pod
// once for filter and prioritize, see podCache).
type request struct {
	body  []byte
	args  extenderv1.ExtenderArgs
	names []string
	offs  []int       // start and end of every name in body
	items [][2]int    // start and end of every Nodes item in body, when known (see itemSpans)
	pairs [][2]string // scratch of the answer's encoder: a map's keys and values, sorted
	out   []byte      // the answer
}

var requests = sync.Pool{New: func() any { return new(request) }}

// Large bodies (full Node objects) are not kept for the next request.
const keepBelow = 1 << 20

func (q *request) release() {
	if cap(q.body) > keepBelow || cap(q.out) > keepBelow {
		return
	}
	clear(q.names) // they hold a copy of their request's names
	*q = request{body: q.body[:0], names: q.names[:0], offs: q.offs[:0], items: q.items[:0], pairs: q.pairs[:0], out: q.out[:0]}
	requests.Put(q)
}

// readArgs decodes an ExtenderArgs body, answering the client itself when it cannot. Hand q
// back with release once the answer is written.
func readArgs(w http.ResponseWriter, r *http.Request) (*request, bool) {
	q := requests.Get().(*request)
	if !q.decodeArgs(w, r) {
		q.release()
		return nil, false
	}
	return q, true
}

// decodeArgs reads the body into q.args: by the fast path when it can, else by encoding/json.
func (q *request) decodeArgs(w http.ResponseWriter, r *http.Request) bool {
	err := q.read(r.Body, r.ContentLength)
	if err == nil && q.parse() {
		return true
	}
	q.args = extenderv1.ExtenderArgs{}
	q.items = q.items[:0]
	return decode(w, io.MultiReader(bytes.NewReader(q.body), r.Body), &q.args)
}

// read reads the whole body; on an error the body reader keeps returning it (http.MaxBytesReader
// does), so that encoding/json's Decoder can be handed the bytes read and then the same error.
func (q *request) read(body io.Reader, length int64) error {
	if length > 0 && length <= MaxBodyBytes {
		q.body = growTo(q.body, int(length)+1) // +1: see EOF without a second buffer
	}
	for {
		if len(q.body) == cap(q.body) {
			q.body = growTo(q.body, max(2*cap(q.body), 4096))
		}
		n, err := body.Read(q.body[len(q.body):cap(q.body)])
		q.body = q.body[:len(q.body)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	return append(b[:cap(b)], make([]byte, n-cap(b))...)[:len(b)]
}

// The keys of ExtenderArgs, as encoding/json spells them (the struct has no tags).
const (
	keyPod = iota
	keyNodes
	keyNodeNames
	keys
)

// parse is the fast path: false when encoding/json must decide.
func (q *request) parse() bool {
	s := scanner{b: q.body}
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen [keys]bool
	for {
		k := s.key()
		if k < 0 || seen[k] || !s.next(':') {
			return false
		}
		seen[k] = true
		if !q.value(&s, k) {
			return false
		}
		if !s.next(',') {
			return s.next('}') // what follows the object is not read, as by json.Decoder
		}
	}
}

func (q *request) value(s *scanner, k int) bool {
	if s.null() {
		return true // the field stays nil
	}
	switch k {
	case keyPod:
		raw, ok := s.objectSpan()
		if ok {
			q.args.Pod, ok = recentPods.decode(raw)
		}
		return ok
	case keyNodes:
		q.args.Nodes = new(corev1.NodeList)
		start := s.skipWS()
		if !s.object(q.args.Nodes) {
			return false
		}
		q.items = itemSpans(q.items[:0], q.body, start, len(q.args.Nodes.Items))
		return true
	}
	return q.nodeNames(s)
}

// nodeNames reads an array of plain strings. The names are pieces of one string copied from
// the body: one allocation, not one a name.
func (q *request) nodeNames(s *scanner) bool {
	if !s.next('[') {
		return false
	}
	q.offs = q.offs[:0]
	if !s.next(']') {
		for {
			start, end, ok := s.plainString()
			if !ok {
				return false
			}
			q.offs = append(q.offs, start, end)
			if !s.next(',') {
				break
			}
		}
		if !s.next(']') {
			return false
		}
	}
	q.names = q.names[:0]
	if q.names == nil {
		q.names = []string{} // [] is not null
	}
	if len(q.offs) > 0 {
		base := q.offs[0]
		all := string(q.body[base:q.offs[len(q.offs)-1]])
		for i := 0; i < len(q.offs); i += 2 {
			q.names = append(q.names, all[q.offs[i]-base:q.offs[i+1]-base])
		}
	}
	q.args.NodeNames = &q.names
	return true
}
