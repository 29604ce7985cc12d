package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"unicode/utf8"

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
// what they were. The Pod and Nodes objects are decoded by encoding/json in both paths.
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
	clear(q.names) // the strings hold their request's body
	*q = request{body: q.body[:0], names: q.names[:0], offs: q.offs[:0], items: q.items[:0], pairs: q.pairs[:0], out: q.out[:0]}
	requests.Put(q)
}

// readArgs decodes an ExtenderArgs body, answering the client itself when it cannot. Hand q
// back with release once the answer is written.
func readArgs(w http.ResponseWriter, r *http.Request) (*request, bool) {
	q := requests.Get().(*request)
	if !q.decode(w, r) {
		q.release()
		return nil, false
	}
	return q, true
}

func (q *request) decode(w http.ResponseWriter, r *http.Request) bool {
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

// recentPods are the pods last decoded: kube-scheduler sends the pod it filtered again to
// prioritize, byte for byte.
var recentPods podCache

// podCache decodes pods with encoding/json, remembering the last few. Each request gets a copy
// of its own, so that nothing a request does to its pod reaches another.
type podCache struct {
	mu   sync.Mutex
	next int
	raw  [8][]byte
	pods [8]*corev1.Pod
}

// maxCachedPod bounds what the cache keeps: a pod with many containers is a few tens of KB.
const maxCachedPod = 64 << 10

func (c *podCache) decode(raw []byte) (*corev1.Pod, bool) {
	if pod := c.find(raw); pod != nil {
		return pod.DeepCopy(), true
	}
	pod := new(corev1.Pod)
	if json.Unmarshal(raw, pod) != nil {
		return nil, false
	}
	if len(raw) > maxCachedPod {
		return pod, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw[c.next], c.pods[c.next] = append(c.raw[c.next][:0], raw...), pod
	c.next = (c.next + 1) % len(c.raw)
	return pod.DeepCopy(), true
}

func (c *podCache) find(raw []byte) *corev1.Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.raw {
		if c.pods[i] != nil && bytes.Equal(c.raw[i], raw) {
			return c.pods[i]
		}
	}
	return nil
}

// scanner walks a JSON body. It recognises only what the fast path accepts.
type scanner struct {
	b []byte
	i int
}

// skipWS skips JSON white space and returns the position.
func (s *scanner) skipWS() int {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\n' || s.b[s.i] == '\r' || s.b[s.i] == '\t') {
		s.i++
	}
	return s.i
}

// next consumes c, after white space, if it comes next.
func (s *scanner) next(c byte) bool {
	if s.skipWS(); s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) null() bool {
	if s.skipWS(); bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += len("null")
		return true
	}
	return false
}

// key reads an object key and says which field of ExtenderArgs it is: -1 for any other, which
// includes the same names in another case (encoding/json matches those too).
func (s *scanner) key() int {
	start, end, ok := s.plainString()
	if !ok {
		return -1
	}
	switch string(s.b[start:end]) {
	case "Pod":
		return keyPod
	case "Nodes":
		return keyNodes
	case "NodeNames":
		return keyNodeNames
	}
	return -1
}

// plainString reads a string of printable ASCII without escapes, returning where its content
// starts and ends; anything else is encoding/json's to decode (escapes, replacement of invalid
// UTF-8).
func (s *scanner) plainString() (start, end int, ok bool) {
	if !s.next('"') {
		return 0, 0, false
	}
	start = s.i
	n := bytes.IndexByte(s.b[start:], '"')
	if n < 0 {
		return 0, 0, false
	}
	end = start + n
	for _, c := range s.b[start:end] {
		if !plainByte[c] {
			return 0, 0, false
		}
	}
	s.i = end + 1
	return start, end, true
}

// plainByte holds the bytes a plain string may hold: printable ASCII but the backslash.
var plainByte = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '\\'
	}
	return t
}()

// object decodes the object that comes next into v with encoding/json.
func (s *scanner) object(v any) bool {
	raw, ok := s.objectSpan()
	return ok && json.Unmarshal(raw, v) == nil
}

// objectSpan returns the object that comes next, not yet validated.
func (s *scanner) objectSpan() ([]byte, bool) {
	start := s.skipWS()
	if start >= len(s.b) || s.b[start] != '{' {
		return nil, false
	}
	end, ok := skipComposite(s.b, start)
	if !ok {
		return nil, false
	}
	s.i = end
	return s.b[start:end], true
}

// skipComposite returns the end of the object or array at b[start], tracking only strings and
// brackets: on valid JSON that is where a parser ends it, and the caller has the span validated.
func skipComposite(b []byte, start int) (end int, ok bool) {
	depth := 0
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1, true
			}
		case '"':
			if i = stringEnd(b, i); i < 0 {
				return 0, false
			}
		}
	}
	return 0, false
}

// stringEnd returns the index of the quote that closes the string opening at b[start], or -1.
func stringEnd(b []byte, start int) int {
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// itemSpans finds the items of the NodeList at b[start:], already decoded by encoding/json
// into n items, so that a filter answer can return the passing Nodes as they came rather than
// encode them again. It gives up (returns none) unless the list holds one key "items", spelt
// so, whose elements are n objects: only then is element i surely the i-th decoded item.
func itemSpans(spans [][2]int, b []byte, start, n int) [][2]int {
	s := scanner{b: b, i: start + 1}
	found := false
	for !s.next('}') {
		ks, ke, ok := s.plainString()
		key := b[ks:ke]
		if !ok || !s.next(':') || bytes.EqualFold(key, []byte("items")) && (found || string(key) != "items") {
			return spans[:0]
		}
		if string(key) == "items" {
			found = true
			spans, ok = elementSpans(&s, spans)
		} else {
			s.i, ok = skipValue(b, s.skipWS())
		}
		if !ok {
			return spans[:0]
		}
		s.next(',')
	}
	if len(spans) != n {
		return spans[:0]
	}
	return spans
}

// elementSpans reads an array of objects, recording where each is.
func elementSpans(s *scanner, spans [][2]int) ([][2]int, bool) {
	if !s.next('[') {
		return spans, false
	}
	if s.next(']') {
		return spans, true
	}
	for {
		start := s.skipWS()
		if start >= len(s.b) || s.b[start] != '{' {
			return spans, false
		}
		end, ok := skipComposite(s.b, start)
		if !ok {
			return spans, false
		}
		spans, s.i = append(spans, [2]int{start, end}), end
		if !s.next(',') {
			return spans, s.next(']')
		}
	}
}

// skipValue returns the end of the (already validated) value at b[start].
func skipValue(b []byte, start int) (int, bool) {
	if start >= len(b) {
		return 0, false
	}
	switch b[start] {
	case '{', '[':
		return skipComposite(b, start)
	case '"':
		end := stringEnd(b, start)
		return end + 1, end >= 0
	}
	i := start
	for i < len(b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(b[i])) {
		i++
	}
	return i, i > start
}
