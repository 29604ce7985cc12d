package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// The answers of filter and prioritize are written by hand, byte for byte what
// json.NewEncoder(w).Encode writes for them (HTML-safe escapes, a final newline), without
// reflection, with one difference: the failed nodes of a filter answer come in the order the
// request named them, not sorted (the same JSON object: the scheduler reads it into a map;
// sorting 1,000 of them was a fifth of a filter's time). Filter answers with full Node
// objects return each passing Node as the request spelt it when that is certain (see
// itemSpans), and encode it with encoding/json otherwise.

// writeAnswer sends q.out as a JSON answer.
func writeAnswer(w http.ResponseWriter, q *request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(q.out)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(q.out); err != nil {
		klog.ErrorS(err, "Writing a response")
	}
}

// appendFilterResult appends res as encoding/json writes an ExtenderFilterResult.
func (q *request) appendFilterResult(dst []byte, res *extenderv1.ExtenderFilterResult) ([]byte, error) {
	dst = append(dst, `{"Nodes":`...)
	dst, err := q.appendNodes(dst, res.Nodes)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `,"NodeNames":`...)
	if res.NodeNames == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendStrings(dst, *res.NodeNames)
	}
	var passed []string
	if res.NodeNames != nil {
		passed = *res.NodeNames
	}
	dst = append(dst, `,"FailedNodes":`...)
	dst = q.appendFailed(dst, res.FailedNodes, passed)
	dst = append(dst, `,"FailedAndUnresolvableNodes":`...)
	dst = q.appendFailed(dst, res.FailedAndUnresolvableNodes, passed)
	dst = append(dst, `,"Error":`...)
	dst = appendString(dst, res.Error)
	return append(dst, "}\n"...), nil
}

// appendPriorities appends list as encoding/json writes a HostPriorityList.
func appendPriorities(dst []byte, list *extenderv1.HostPriorityList) []byte {
	if list == nil || *list == nil {
		return append(dst, "null\n"...)
	}
	dst = append(dst, '[')
	for i, p := range *list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"Host":`...)
		dst = appendString(dst, p.Host)
		dst = append(dst, `,"Score":`...)
		dst = strconv.AppendInt(dst, p.Score, 10)
		dst = append(dst, '}')
	}
	return append(dst, "]\n"...)
}

func appendStrings(dst []byte, list []string) []byte {
	if list == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendFailed appends a map of node to reason: in the order the request named the nodes,
// or, when that order does not hold every key exactly once, sorted as encoding/json sorts
// them.
func (q *request) appendFailed(dst []byte, m extenderv1.FailedNodesMap, passed []string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	if !q.failedInOrder(m, passed) {
		q.pairs = q.pairs[:0]
		for k, v := range m {
			q.pairs = append(q.pairs, [2]string{k, v})
		}
		slices.SortFunc(q.pairs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	}
	dst = append(dst, '{')
	for i, kv := range q.pairs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendString(dst, kv[0]), ':')
		dst = appendString(dst, kv[1])
	}
	clear(q.pairs)
	return append(dst, '}')
}

// failedInOrder puts m's entries in q.pairs in the order of the request's node names,
// stepping over the passed ones (the filter keeps the request's order). It reports whether
// that found every entry exactly once. Every entry of a filter answer is one of the request's
// names, so a count that differs means a name came twice (or the answer is not of this
// request's names), and the caller sorts instead.
func (q *request) failedInOrder(m extenderv1.FailedNodesMap, passed []string) bool {
	q.pairs = q.pairs[:0]
	if q.args.NodeNames == nil { // full Nodes (or none): sorted
		return len(m) == 0
	}
	j := 0
	for _, name := range *q.args.NodeNames { // as decoded, by either reader
		if j < len(passed) && passed[j] == name {
			j++
			continue
		}
		if reason, ok := m[name]; ok {
			q.pairs = append(q.pairs, [2]string{name, reason})
		}
	}
	return len(q.pairs) == len(m)
}

// appendNodes appends a NodeList: its envelope by encoding/json, each item as the request spelt
// it when the filter passed it unchanged, else by encoding/json.
func (q *request) appendNodes(dst []byte, list *corev1.NodeList) ([]byte, error) {
	if list == nil {
		return append(dst, "null"...), nil
	}
	env, err := json.Marshal(&corev1.NodeList{TypeMeta: list.TypeMeta, ListMeta: list.ListMeta, Items: list.Items[:0:0]})
	if err != nil {
		return nil, err
	}
	if list.Items == nil {
		return append(dst, env...), nil
	}
	dst = append(dst, bytes.TrimSuffix(env, []byte("]}"))...) // ends in "items":[
	next := 0                                                 // the request's item to look at first
	for i := range list.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, next, err = q.appendNode(dst, &list.Items[i], next); err != nil {
			return nil, err
		}
	}
	return append(dst, "]}"...), nil
}

// appendNode appends one Node of a filter answer. The scheduler's Filter answers with the
// request's Nodes, in their order, so the request's spelling of the same Node is found by
// walking on from the last one found.
func (q *request) appendNode(dst []byte, n *corev1.Node, next int) ([]byte, int, error) {
	if q.args.Nodes != nil && len(q.items) == len(q.args.Nodes.Items) {
		for i := next; i < len(q.items); i++ {
			if in := &q.args.Nodes.Items[i]; in.Name == n.Name && in.UID == n.UID {
				return append(dst, q.body[q.items[i][0]:q.items[i][1]]...), i + 1, nil
			}
		}
	}
	b, err := json.Marshal(n)
	return append(dst, b...), next, err
}

// appendString appends s quoted as encoding/json quotes it with HTML escaping on (the
// Encoder's default): \" \\ \b \f \n \r \t, \u00XX for other control bytes and < > &, \ufffd
// for invalid UTF-8, \u2028 and \u2029.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(append(dst, s[start:i]...), escapes[b]...)
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 || c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			switch c {
			case utf8.RuneError:
				dst = append(dst, `\ufffd`...)
			default:
				dst = append(dst, `\u202`...)
				dst = append(dst, hex[c&0xF])
			}
			start = i + size
		}
		i += size
	}
	return append(append(dst, s[start:]...), '"')
}

const hex = "0123456789abcdef"

// plain holds the ASCII bytes written as they are; escapes how each other one is written.
var plain, escapes = func() (plain [utf8.RuneSelf]bool, escapes [utf8.RuneSelf]string) {
	for b := range utf8.RuneSelf {
		switch {
		case b == '"' || b == '\\':
			escapes[b] = `\` + string(rune(b))
		case b == '\b':
			escapes[b] = `\b`
		case b == '\f':
			escapes[b] = `\f`
		case b == '\n':
			escapes[b] = `\n`
		case b == '\r':
			escapes[b] = `\r`
		case b == '\t':
			escapes[b] = `\t`
		case b < ' ' || b == '<' || b == '>' || b == '&':
			escapes[b] = `\u00` + string(hex[b>>4]) + string(hex[b&0xF])
		default:
			plain[b] = true
		}
	}
	return plain, escapes
}()
