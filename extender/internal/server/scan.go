package server

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

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

// plainString reads a string of ASCII from the space up, without escapes, returning where its content
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

// plainByte holds the bytes a plain string may hold: ASCII from the space up, but the backslash.
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
