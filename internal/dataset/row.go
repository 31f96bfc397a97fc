package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Row is one validated example: the kept columns in Definition.Kept order,
// and the target.
type Row struct {
	Fields []Field
	Target Field
}

// Field is one validated value. Numeric columns (float, int, bool) set Num;
// string and text columns set Str.
type Field struct {
	Num float64
	Str string
}

// FieldError says which field is wrong and why. Gateway answers carry the
// field; quarantine reports carry the message.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// ParseValue validates one raw value against a column.
func (d *Definition) ParseValue(c Column, raw string) (Field, error) {
	return d.parseValue(&c, raw, false)
}

// parseValue is ParseValue without copying the column, for the per-value
// loop of InputReader, which has checked the whole record's UTF-8 already
// (validUTF8).
func (d *Definition) parseValue(c *Column, raw string, validUTF8 bool) (Field, error) {
	s := strings.TrimSpace(raw)
	if !validUTF8 && !utf8.ValidString(s) {
		return Field{}, &FieldError{c.Name, "not valid UTF-8"}
	}
	if s == "" {
		if c.Optional {
			return missing(*c), nil
		}
		return Field{}, &FieldError{c.Name, "missing value"}
	}
	switch c.Type {
	case TypeFloat, TypeInt:
		v, ok := parseSimpleFloat(s)
		var err error
		if !ok {
			v, err = strconv.ParseFloat(s, 64)
		}
		if errors.Is(err, strconv.ErrRange) && math.IsInf(v, 0) {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("%s overflows a 64-bit float (at most about 1.8e308)", clip(s))}
		}
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("%q is not a number", clip(s))}
		}
		if c.Type == TypeInt && v != math.Trunc(v) {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("%q is not a whole number", clip(s))}
		}
		if c.Min != nil && (v < *c.Min || (c.ExclusiveMin && v == *c.Min)) {
			op := ">="
			if c.ExclusiveMin {
				op = ">"
			}
			return Field{}, &FieldError{c.Name, fmt.Sprintf("%s is out of range (want %s %g)", clip(s), op, *c.Min)}
		}
		if c.Max != nil && v > *c.Max {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("%s is out of range (want <= %g)", clip(s), *c.Max)}
		}
		return Field{Num: v}, nil
	case TypeBool:
		switch strings.ToLower(s) {
		case "1", "true", "yes":
			return Field{Num: 1}, nil
		case "0", "false", "no":
			return Field{Num: 0}, nil
		}
		return Field{}, &FieldError{c.Name, fmt.Sprintf("%q is not a boolean (want 0/1 or true/false)", clip(s))}
	case TypeText:
		// Bytes, not characters: the bound is on what is stored and read.
		if c.MaxLength > 0 && len(s) > c.MaxLength {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("text of %d bytes is longer than max_length %d", len(s), c.MaxLength)}
		}
		return Field{Str: s}, nil
	default: // string
		if c.MaxLength > 0 && utf8.RuneCountInString(s) > c.MaxLength {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("longer than %d characters", c.MaxLength)}
		}
		if len(c.Choices) > 0 && !contains(c.Choices, s) {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("%q is not one of the allowed values (want one of: %s)", clip(s), listChoices(c.Choices))}
		}
		if re := d.pattern[c.Name]; re != nil && !re.MatchString(s) {
			return Field{}, &FieldError{c.Name, fmt.Sprintf("%q does not match %s", clip(s), c.Pattern)}
		}
		return Field{Str: s}, nil
	}
}

// JSONBool renders a JSON boolean as a CSV cell of column c. Only bool
// columns take one: true is not a price or a bedroom count, and reading it
// as 1 put $1 sales into training data.
func JSONBool(c Column, b bool) (string, error) {
	if c.Type != TypeBool {
		return "", &FieldError{c.Name, fmt.Sprintf("%t is a boolean; want %s", b, typeWant(c))}
	}
	if b {
		return "1", nil
	}
	return "0", nil
}

// typeWant names what a column's values are, for error messages.
func typeWant(c Column) string {
	switch c.Type {
	case TypeFloat:
		return "a number"
	case TypeInt:
		return "a whole number"
	case TypeBool:
		return "a boolean"
	default:
		return "a string"
	}
}

// listChoices names a column's choices for an error message, the first
// twenty of them when there are more.
func listChoices(cs []string) string {
	const most = 20
	if len(cs) > most {
		return strings.Join(cs[:most], ", ") + fmt.Sprintf(", … (%d in all)", len(cs))
	}
	return strings.Join(cs, ", ")
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// missing is an empty optional value: NaN for numbers (never a real value
// here), so a model can impute it instead of reading a zero.
func missing(c Column) Field {
	if IsNumeric(c) {
		return Field{Num: math.NaN()}
	}
	return Field{}
}

// IsNumeric reports whether a column's values are numbers.
func IsNumeric(c Column) bool {
	return c.Type == TypeFloat || c.Type == TypeInt || c.Type == TypeBool
}

// Format renders a field canonically (the staged CSV form).
func Format(c Column, f Field) string {
	if IsNumeric(c) {
		if math.IsNaN(f.Num) {
			return ""
		}
		return strconv.FormatFloat(f.Num, 'g', -1, 64)
	}
	return f.Str
}

// RowHash identifies a row by content: same features and same target, same
// hash. It decides duplicates and the train/test split.
type RowHash [16]byte

func (h RowHash) String() string { return hex.EncodeToString(h[:]) }

// Hash computes a row's content hash.
func (d *Definition) Hash(r Row) RowHash {
	h := sha256.New()
	var buf []byte
	for i, c := range d.kept {
		buf = append(buf[:0], Format(c, r.Fields[i])...)
		buf = append(buf, 0x1f)
		h.Write(buf)
	}
	h.Write([]byte(Format(d.Target, r.Target)))
	var out RowHash
	copy(out[:], h.Sum(nil))
	return out
}

// IsTest reports whether a row belongs to the test split. It depends only on
// the row's content, so a row never moves between splits across versions.
func (d *Definition) IsTest(h RowHash) bool {
	u := binary.BigEndian.Uint64(h[:8])
	return float64(u>>11)/float64(1<<53) < d.TestFraction
}

// RowFromFields validates an instance given as text by column name (a
// correction) plus its label. Dropped columns may be present and are
// ignored; unknown names are an error.
func (d *Definition) RowFromFields(fields map[string]string, label string) (Row, error) {
	for name := range fields {
		if _, ok := d.all[name]; !ok || name == d.Target.Name {
			return Row{}, &FieldError{name, "unknown field"}
		}
	}
	row := Row{Fields: make([]Field, len(d.kept))}
	for i, c := range d.kept {
		f, err := d.ParseValue(c, fields[c.Name])
		if err != nil {
			return Row{}, err
		}
		row.Fields[i] = f
	}
	t, err := d.ParseValue(d.Target, label)
	if err != nil {
		return Row{}, err
	}
	row.Target = t
	return row, nil
}
