// Package filter is flowlake's filter language, the q parameter of the
// query API:
//
//	host ~ "api\." and status >= 500 and not method in (GET, HEAD)
//
// Comparisons are field op value with op one of = (or ==), !=, <, <=, >,
// >=, ~ (RE2 regular expression, unanchored) and !~, or field [not] in
// (v1, v2, ...); they combine with and, or, not and parentheses (not binds
// tightest, then and, then or; keywords are case-insensitive). Values are
// bare words (anything up to a space or one of ( ) , = ! < > ~ " '),
// "quoted strings" (\" and \\ are escapes, any other backslash stays, so
// "api\." is the regular expression api\.), integers, durations (250ms,
// 1.5s, 100us), RFC 3339 times and true/false. Fields lists the fields
// with their types; a value must fit its field's type.
//
// Parse never executes anything the user typed: the result is a tree of
// typed comparisons (Expr) that the query engine evaluates against rows,
// either one row at a time through the Row interface (Eval) or vectorised
// over column batches using the comparisons' Match methods. Errors are
// *Error values carrying the byte offset of the problem.
package filter

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on the input.
const (
	// MaxLen is the longest q accepted, in bytes.
	MaxLen = 8 << 10
	// MaxDepth bounds the nesting of parentheses and not.
	MaxDepth = 64
	// MaxList bounds the values of one in (...) list.
	MaxList = 1000
)

// Error is a malformed filter: Msg says what is wrong at byte offset Pos
// of the input (len(q) when the input ended too early).
type Error struct {
	Pos int
	Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("filter: %s (at byte %d)", e.Msg, e.Pos)
}

// Kind is the kind of an Expr node.
type Kind uint8

// Expr kinds.
const (
	KindCmp Kind = iota // a comparison (Cmp)
	KindAnd             // every Arg holds
	KindOr              // some Arg holds
	KindNot             // Args[0] does not hold
)

// Expr is a parsed filter. A nil *Expr is the empty filter and matches
// every row.
type Expr struct {
	Kind Kind
	Args []*Expr // KindAnd, KindOr (two or more), KindNot (one)
	Cmp  *Cmp    // KindCmp
}

// Op is a comparison operator. != and !~ parse to Not(Eq) and
// Not(Match), not in to Not(In).
type Op uint8

// Comparison operators.
const (
	Eq Op = iota
	Lt
	Le
	Gt
	Ge
	Match // ~: the regular expression Re finds a match
	In    // the value is one of Strs / Ints
)

var opNames = [...]string{Eq: "=", Lt: "<", Le: "<=", Gt: ">", Ge: ">=", Match: "~", In: "in"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// Cmp compares one base field with a constant. Composite fields (client,
// server) are expanded at parse time into an Or (or a Not of an Or) of
// comparisons of their base fields.
type Cmp struct {
	// Field is the base field name (see Fields).
	Field string
	// Type is the field's type. Int, Duration (microseconds) and Time
	// (microseconds since the epoch) values are in Int / Ints; String
	// values in Str / Strs; Bool in Bool.
	Type Type
	Op   Op
	Str  string
	Int  int64
	Bool bool
	Strs []string // In, sorted, unique
	Ints []int64  // In, sorted, unique
	Re   *regexp.Regexp
	// Pos is the byte offset of the field name in the input.
	Pos int
}

// MatchString reports whether the comparison holds for the string value s
// of a String field.
func (c *Cmp) MatchString(s string) bool {
	switch c.Op {
	case Eq:
		return s == c.Str
	case Match:
		return c.Re.MatchString(s)
	case In:
		_, ok := slices.BinarySearch(c.Strs, s)
		return ok
	case Lt:
		return s < c.Str
	case Le:
		return s <= c.Str
	case Gt:
		return s > c.Str
	case Ge:
		return s >= c.Str
	}
	return false
}

// MatchInt reports whether the comparison holds for the value v of an Int,
// Duration or Time field.
func (c *Cmp) MatchInt(v int64) bool {
	switch c.Op {
	case Eq:
		return v == c.Int
	case Lt:
		return v < c.Int
	case Le:
		return v <= c.Int
	case Gt:
		return v > c.Int
	case Ge:
		return v >= c.Int
	case In:
		_, ok := slices.BinarySearch(c.Ints, v)
		return ok
	}
	return false
}

// MatchBool reports whether the comparison holds for the value v of a Bool
// field.
func (c *Cmp) MatchBool(v bool) bool {
	return c.Op == Eq && v == c.Bool
}

// IntRange returns the closed interval of values an Int-like comparison
// can hold for (for pruning by min/max statistics); ok is false when it
// cannot tell (every value possible).
func (c *Cmp) IntRange() (lo, hi int64, ok bool) {
	const minI, maxI = -1 << 63, 1<<63 - 1
	switch c.Op {
	case Eq:
		return c.Int, c.Int, true
	case Lt:
		if c.Int == minI {
			return 1, 0, true // empty
		}
		return minI, c.Int - 1, true
	case Le:
		return minI, c.Int, true
	case Gt:
		if c.Int == maxI {
			return 1, 0, true
		}
		return c.Int + 1, maxI, true
	case Ge:
		return c.Int, maxI, true
	case In:
		if len(c.Ints) == 0 {
			return 1, 0, true
		}
		return c.Ints[0], c.Ints[len(c.Ints)-1], true
	}
	return 0, 0, false
}

// Row gives the values of one row by base field name. The engine's
// vectorised scans evaluate comparisons over columns instead; Row is the
// reference semantics.
type Row interface {
	String(field string) string
	Int(field string) int64 // Int, Duration (µs) and Time (µs since the epoch) fields
	Bool(field string) bool
}

// Eval reports whether r matches e (a nil e matches every row).
func (e *Expr) Eval(r Row) bool {
	if e == nil {
		return true
	}
	switch e.Kind {
	case KindCmp:
		c := e.Cmp
		switch c.Type {
		case String:
			return c.MatchString(r.String(c.Field))
		case Bool:
			return c.MatchBool(r.Bool(c.Field))
		default:
			return c.MatchInt(r.Int(c.Field))
		}
	case KindAnd:
		for _, a := range e.Args {
			if !a.Eval(r) {
				return false
			}
		}
		return true
	case KindOr:
		for _, a := range e.Args {
			if a.Eval(r) {
				return true
			}
		}
		return false
	case KindNot:
		return !e.Args[0].Eval(r)
	}
	return false
}

// Columns returns the base fields e reads, sorted (nil for a nil e).
func (e *Expr) Columns() []string {
	if e == nil {
		return nil
	}
	var out []string
	e.Walk(func(c *Cmp) { out = append(out, c.Field) })
	slices.Sort(out)
	return slices.Compact(out)
}

// Walk calls fn for every comparison of e, left to right.
func (e *Expr) Walk(fn func(*Cmp)) {
	if e == nil {
		return
	}
	if e.Kind == KindCmp {
		fn(e.Cmp)
		return
	}
	for _, a := range e.Args {
		a.Walk(fn)
	}
}

// String returns e in the filter language; parsing it gives an equivalent
// expression.
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *Expr) write(b *strings.Builder) {
	switch e.Kind {
	case KindCmp:
		e.Cmp.write(b)
	case KindAnd, KindOr:
		sep := " and "
		if e.Kind == KindOr {
			sep = " or "
		}
		b.WriteByte('(')
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(sep)
			}
			a.write(b)
		}
		b.WriteByte(')')
	case KindNot:
		b.WriteString("not ")
		e.Args[0].write(b)
	}
}

func (c *Cmp) write(b *strings.Builder) {
	b.WriteString(c.Field)
	b.WriteByte(' ')
	b.WriteString(c.Op.String())
	b.WriteByte(' ')
	switch {
	case c.Op == In:
		b.WriteByte('(')
		if c.Type == String {
			for i, s := range c.Strs {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(quote(s))
			}
		} else {
			for i, v := range c.Ints {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(c.formatInt(v))
			}
		}
		b.WriteByte(')')
	case c.Op == Match:
		b.WriteString(quote(c.Re.String()))
	case c.Type == String:
		b.WriteString(quote(c.Str))
	case c.Type == Bool:
		b.WriteString(strconv.FormatBool(c.Bool))
	default:
		b.WriteString(c.formatInt(c.Int))
	}
}

func (c *Cmp) formatInt(v int64) string {
	switch c.Type {
	case Duration:
		return strconv.FormatInt(v, 10) + "us"
	case Time:
		return quote(time.UnixMicro(v).UTC().Format(time.RFC3339Nano))
	}
	return strconv.FormatInt(v, 10)
}

// quote writes s as a quoted string of the language.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(s[i])
		}
	}
	b.WriteByte('"')
	return b.String()
}
