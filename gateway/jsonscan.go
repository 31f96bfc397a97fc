package gateway

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth is encoding/json's nesting limit, kept so that the predict
// decoder refuses what the rest of the API refuses.
const maxJSONDepth = 10000

// jsonSyntaxError is malformed JSON at a byte offset of the body.
type jsonSyntaxError struct {
	off int
	msg string
}

func (e *jsonSyntaxError) Error() string { return fmt.Sprintf("at byte %d: %s", e.off, e.msg) }

// jsonScanner validates and tokenises a JSON document held in memory. It
// checks the grammar of RFC 8259 exactly (as encoding/json does) but leaves
// the meaning of each token to its caller, so that values need not become
// interface{} maps on their way to a row.
type jsonScanner struct {
	b     []byte
	i     int
	stack []byte // open containers while skipping a value
}

func (s *jsonScanner) reset(b []byte) { s.b, s.i, s.stack = b, 0, s.stack[:0] }

func (s *jsonScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space; 0 at the end (a NUL byte
// is never valid there either, but atEnd tells them apart).
func (s *jsonScanner) peek() byte {
	s.skipSpace()
	if s.i == len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// atEnd reports whether only white space is left.
func (s *jsonScanner) atEnd() bool {
	s.skipSpace()
	return s.i == len(s.b)
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	if s.i >= len(s.b) {
		return &jsonSyntaxError{off: len(s.b), msg: "unexpected end of the body"}
	}
	return &jsonSyntaxError{off: s.i, msg: fmt.Sprintf(format, args...)}
}

// expect consumes c after white space.
func (s *jsonScanner) expect(c byte, context string) error {
	if s.peek() != c {
		return s.errorf("invalid character %q %s", s.at(), context)
	}
	s.i++
	return nil
}

func (s *jsonScanner) at() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str scans the string token starting at s.i (its opening quote) and
// returns its content, undecoded, and whether that content is already the
// decoded text: no escapes, valid UTF-8.
func (s *jsonScanner) str() (raw []byte, plain bool, err error) {
	start := s.i + 1
	plain, ascii := true, true
	for i := start; i < len(s.b); {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			raw = s.b[start:i]
			return raw, plain && (ascii || utf8.Valid(raw)), nil
		case c == '\\':
			plain = false
			if i+1 >= len(s.b) {
				s.i = len(s.b)
				return nil, false, s.errorf("")
			}
			switch s.b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(s.b) {
						s.i = len(s.b)
						return nil, false, s.errorf("")
					}
					if !isHex(s.b[k]) {
						s.i = k
						return nil, false, s.errorf("invalid character %q in \\u hexadecimal character escape", s.b[k])
					}
				}
				i += 6
			default:
				s.i = i + 1
				return nil, false, s.errorf("invalid character %q in string escape code", s.b[i+1])
			}
		case c < 0x20:
			s.i = i
			return nil, false, s.errorf("invalid character %q in string literal", c)
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			i++
		}
	}
	s.i = len(s.b)
	return nil, false, s.errorf("")
}

// decodeString returns the text of a string token whose content is raw.
func decodeString(raw []byte, plain bool) (string, error) {
	if plain {
		return string(raw), nil
	}
	out, _ := appendUnquoted(make([]byte, 0, len(raw)), raw)
	return string(out), nil
}

// appendUnquoted appends the text of a string token whose content is raw
// (already checked by str) as encoding/json decodes it: escapes resolved,
// surrogate pairs joined, and each invalid UTF-8 byte or unpaired
// surrogate replaced by U+FFFD. valid reports that nothing was replaced:
// a text column refuses what is not Unicode rather than store a guess.
func appendUnquoted(dst, raw []byte) (out []byte, valid bool) {
	valid = true
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			i += 2
			switch e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					// A pair is two escapes; anything else leaves this half alone.
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if d := utf16.DecodeRune(r, hex4(raw[i+2:])); d != utf8.RuneError {
							dst = utf8.AppendRune(dst, d)
							i += 6
							break
						}
					}
					r, valid = utf8.RuneError, false
				}
				dst = utf8.AppendRune(dst, r)
			default: // " \\ /
				dst = append(dst, e)
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				valid = false
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+n]...)
			}
			i += n
		}
	}
	return dst, valid
}

// hex4 reads four hexadecimal digits (str checked them).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// num scans the number token starting at s.i and returns its bytes.
func (s *jsonScanner) num() ([]byte, error) {
	start, b := s.i, s.b
	i := s.i
	if b[i] == '-' {
		i++
	}
	digits := func(context string) error {
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return s.errorf("invalid character %q %s", s.at(), context)
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		return nil
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if err := digits("in numeric literal"); err != nil {
		return nil, err
	}
	if i < len(b) && b[i] == '.' {
		i++
		if err := digits("after decimal point in numeric literal"); err != nil {
			return nil, err
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if err := digits("in exponent of numeric literal"); err != nil {
			return nil, err
		}
	}
	s.i = i
	return b[start:i], nil
}

// literal consumes true, false or null, whose first byte is at s.i.
func (s *jsonScanner) literal(word string) error {
	for k := 0; k < len(word); k++ {
		if s.i+k >= len(s.b) || s.b[s.i+k] != word[k] {
			s.i += k
			return s.errorf("invalid character %q in literal %s", s.at(), word)
		}
	}
	s.i += len(word)
	return nil
}

// jsonKind names the kind of the value starting with c, as encoding/json's
// type errors do.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// skip validates the value after white space and moves past it; depth is
// the nesting the value would open (1 for the document itself).
func (s *jsonScanner) skip(depth int) error {
	s.stack = s.stack[:0]
	for {
		// A value.
		switch c := s.peek(); {
		case c == '{' || c == '[':
			if depth+len(s.stack) > maxJSONDepth {
				return s.errorf("exceeded max depth")
			}
			s.i++
			closing := byte('}')
			if c == '[' {
				closing = ']'
			}
			if s.peek() == closing {
				s.i++
				break
			}
			s.stack = append(s.stack, c)
			if c == '{' {
				if err := s.key(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, _, err := s.str(); err != nil {
				return err
			}
		case c == 't':
			if err := s.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := s.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := s.literal("null"); err != nil {
				return err
			}
		case c == '-' || isDigit(c):
			if _, err := s.num(); err != nil {
				return err
			}
		default:
			return s.errorf("invalid character %q looking for beginning of value", c)
		}
		// After a value: close containers until another value is due.
		for {
			if len(s.stack) == 0 {
				return nil
			}
			open := s.stack[len(s.stack)-1]
			c := s.peek()
			if c == ',' {
				s.i++
				if open == '{' {
					if err := s.key(); err != nil {
						return err
					}
				}
				break
			}
			if open == '{' && c == '}' || open == '[' && c == ']' {
				s.i++
				s.stack = s.stack[:len(s.stack)-1]
				continue
			}
			if open == '{' {
				return s.errorf("invalid character %q after object key:value pair", c)
			}
			return s.errorf("invalid character %q after array element", c)
		}
	}
}

// key consumes an object key and its colon.
func (s *jsonScanner) key() error {
	_, err := s.objectKey()
	return err
}

// objectKey consumes an object key and its colon and returns the key,
// unescaped (a view of the input when it has no escapes).
func (s *jsonScanner) objectKey() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.errorf("invalid character %q looking for beginning of object key string", s.at())
	}
	raw, plain, err := s.str()
	if err != nil {
		return nil, err
	}
	if err := s.expect(':', "after object key"); err != nil {
		return nil, err
	}
	if plain {
		return raw, nil
	}
	k, err := decodeString(raw, plain)
	if err != nil {
		return nil, err
	}
	return []byte(k), nil
}

// appendJSONString appends s as encoding/json's Marshal writes a string:
// quoted, with <, > and & escaped (an answer may end up inside HTML),
// U+2028 and U+2029 escaped for JavaScript, and each invalid UTF-8 byte
// written as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
