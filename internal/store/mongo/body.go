package mongo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Bodies are converted here rather than with bson.UnmarshalExtJSON, which
// would read {"$numberLong": "5"} or {"$oid": ...} as BSON types instead of
// the objects they are. Numbers get the types Extended JSON would give them
// (integers int32/int64, the rest double) and come back, through relaxed
// Extended JSON, as plain JSON numbers.
//
// Some JSON is not storable as is in MongoDB, or in FerretDB v1 (which
// rejects more), so it is stored escaped and unescaped on the way out:
//   - in field names, '%', '.', '$' and NUL become %XX (FerretDB rejects '.'
//     and a leading '$'; BSON names cannot hold NUL), and a top-level "_id"
//     field becomes "%5Fid" (_id holds the key);
//   - an array directly inside an array (FerretDB: "nested arrays are not
//     supported") is stored as {"%array": [...]}; no escaped name can be
//     "%array", since '%' in names is always followed by two hex digits.
// Known differences from store/memory and store/bolt: an integer outside the
// int64 range comes back as the nearest double, and duplicate names in one
// object keep the last value (as encoding/json reads them).

const nestedArrayKey = "%array"

// maxDepth is below MongoDB's nesting limit of 100 documents.
const maxDepth = 90

// toBSON builds the stored document {_id: key, ...body}, keeping field order.
func toBSON(key string, body json.RawMessage) (bson.D, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("body is not a JSON object")
	}
	c := converter{dec: dec}
	fields, err := c.object(0)
	if err != nil {
		return nil, err
	}
	return append(bson.D{{Key: "_id", Value: key}}, fields...), nil
}

type converter struct {
	dec *json.Decoder
}

// object reads an object's members after its '{'.
func (c converter) object(depth int) (bson.D, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	d := bson.D{}
	var index map[string]int // for objects too big for a linear duplicate check
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		name := escapeName(tok.(string), depth == 0)
		if tok, err = c.dec.Token(); err != nil {
			return nil, err
		}
		v, err := c.value(tok, depth, false)
		if err != nil {
			return nil, err
		}
		i := -1
		if index != nil {
			if j, ok := index[name]; ok {
				i = j
			}
		} else {
			for j := range d {
				if d[j].Key == name {
					i = j
					break
				}
			}
		}
		if i >= 0 {
			d[i].Value = v
			continue
		}
		d = append(d, bson.E{Key: name, Value: v})
		if index == nil && len(d) > 16 {
			index = make(map[string]int, 2*len(d))
			for j, e := range d {
				index[e.Key] = j
			}
		} else if index != nil {
			index[name] = len(d) - 1
		}
	}
	_, err := c.dec.Token() // '}'
	return d, err
}

func (c converter) value(tok json.Token, depth int, inArray bool) (any, error) {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return c.object(depth + 1)
		}
		a := bson.A{}
		for c.dec.More() {
			tok, err := c.dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := c.value(tok, depth+1, true)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := c.dec.Token(); err != nil { // ']'
			return nil, err
		}
		if inArray {
			return bson.D{{Key: nestedArrayKey, Value: a}}, nil
		}
		return a, nil
	case json.Number:
		return number(string(t))
	case string, bool, nil:
		return t, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

func number(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			if i >= math.MinInt32 && i <= math.MaxInt32 {
				return int32(i), nil
			}
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: %w", s, err)
	}
	return f, nil
}

func escapeName(name string, topLevel bool) string {
	if topLevel && name == "_id" {
		return "%5Fid"
	}
	if !strings.ContainsAny(name, "%.$\x00") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '%', '.', '$', 0:
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescapeName(name string) string {
	if !strings.Contains(name, "%") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '%' && i+2 < len(name) {
			if v, err := strconv.ParseUint(name[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// fromBSON splits a stored document into its key and its JSON body.
func fromBSON(raw bson.Raw) (key string, body json.RawMessage, err error) {
	var d bson.D
	if err := bson.Unmarshal(raw, &d); err != nil {
		return "", nil, fmt.Errorf("read document: %w", err)
	}
	out := make(bson.D, 0, len(d))
	found := false
	for _, e := range d {
		if e.Key == "_id" {
			key, found = e.Value.(string)
			continue
		}
		out = append(out, bson.E{Key: unescapeName(e.Key), Value: unescapeValue(e.Value, false)})
	}
	if !found {
		return "", nil, errors.New("document has no string _id")
	}
	body, err = bson.MarshalExtJSON(out, false, false)
	if err != nil {
		return "", nil, fmt.Errorf("key %q: to JSON: %w", key, err)
	}
	return key, body, nil
}

func unescapeValue(v any, inArray bool) any {
	switch v := v.(type) {
	case bson.D:
		if inArray && len(v) == 1 && v[0].Key == nestedArrayKey {
			if a, ok := v[0].Value.(bson.A); ok {
				return unescapeValue(a, false)
			}
		}
		for i := range v {
			v[i].Key = unescapeName(v[i].Key)
			v[i].Value = unescapeValue(v[i].Value, false)
		}
		return v
	case bson.A:
		for i := range v {
			v[i] = unescapeValue(v[i], true)
		}
		return v
	default:
		return v
	}
}
