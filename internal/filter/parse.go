package filter

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF    tokKind = iota
	tWord           // bare word (field names, keywords and unquoted values)
	tString         // "quoted string"
	tOp             // = == != < <= > >= ~ !~
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string // word, unescaped string or operator
	pos  int
	end  int
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "string " + strconv.Quote(t.text)
	case tLParen:
		return `"("`
	case tRParen:
		return `")"`
	case tComma:
		return `","`
	}
	return strconv.Quote(t.text)
}

// isWordByte reports whether c may be part of a bare word.
func isWordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', '(', ')', ',', '=', '!', '<', '>', '~', '"', '\'':
		return false
	}
	return true
}

// lex splits q into tokens.
func lex(q string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '(':
			toks = append(toks, token{kind: tLParen, text: "(", pos: i, end: i + 1})
			i++
		case c == ')':
			toks = append(toks, token{kind: tRParen, text: ")", pos: i, end: i + 1})
			i++
		case c == ',':
			toks = append(toks, token{kind: tComma, text: ",", pos: i, end: i + 1})
			i++
		case c == '=' || c == '<' || c == '>' || c == '~' || c == '!':
			start := i
			i++
			if i < len(q) && (q[i] == '=' && c != '~' || q[i] == '~' && c == '!') {
				i++
			}
			op := q[start:i]
			if op == "!" {
				return nil, &Error{Pos: start, Msg: `"!" must be followed by "=" or "~" (use "not" to negate)`}
			}
			if op == "==" {
				op = "="
			}
			toks = append(toks, token{kind: tOp, text: op, pos: start, end: i})
		case c == '"':
			s, end, err := lexString(q, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, text: s, pos: i, end: end})
			i = end
		case c == '\'':
			return nil, &Error{Pos: i, Msg: `strings are quoted with " not '`}
		default:
			start := i
			for i < len(q) && isWordByte(q[i]) {
				i++
			}
			w := q[start:i]
			if !utf8.ValidString(w) {
				return nil, &Error{Pos: start + invalidUTF8(w), Msg: "invalid UTF-8"}
			}
			toks = append(toks, token{kind: tWord, text: w, pos: start, end: i})
		}
	}
	toks = append(toks, token{kind: tEOF, pos: len(q), end: len(q)})
	return toks, nil
}

// invalidUTF8 returns the offset of the first invalid UTF-8 byte of s.
func invalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return 0
}

// lexString reads the quoted string starting at q[start] == '"'.
func lexString(q string, start int) (string, int, error) {
	var b strings.Builder
	i := start + 1
	for i < len(q) {
		c := q[i]
		switch c {
		case '"':
			s := b.String()
			if !utf8.ValidString(s) {
				return "", 0, &Error{Pos: start + 1 + invalidUTF8(q[start+1:i]), Msg: "invalid UTF-8 in string"}
			}
			return s, i + 1, nil
		case '\\':
			if i+1 < len(q) && (q[i+1] == '"' || q[i+1] == '\\') {
				b.WriteByte(q[i+1])
				i += 2
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
		i++
	}
	return "", 0, &Error{Pos: start, Msg: "unterminated string"}
}

// parser is a recursive-descent parser over the tokens of one input.
type parser struct {
	toks  []token
	i     int
	depth int
}

// Parse parses q. An empty or blank q yields a nil *Expr, which matches
// every row. Errors are *Error.
func Parse(q string) (*Expr, error) {
	if len(q) > MaxLen {
		return nil, &Error{Pos: MaxLen, Msg: fmt.Sprintf("filter longer than %d bytes", MaxLen)}
	}
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	if len(toks) == 1 {
		return nil, nil
	}
	p := &parser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		if t.kind == tRParen {
			return nil, &Error{Pos: t.pos, Msg: `unbalanced ")"`}
		}
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf(`expected "and", "or" or end of input, found %s`, t.describe())}
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// keyword reports whether t is the bare word kw (case-insensitive).
func keyword(t token, kw string) bool {
	return t.kind == tWord && strings.EqualFold(t.text, kw)
}

func (p *parser) or() (*Expr, error) {
	first, err := p.and()
	if err != nil {
		return nil, err
	}
	args := []*Expr{first}
	for keyword(p.peek(), "or") {
		p.next()
		e, err := p.and()
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	return join(KindOr, args), nil
}

func (p *parser) and() (*Expr, error) {
	first, err := p.unary()
	if err != nil {
		return nil, err
	}
	args := []*Expr{first}
	for keyword(p.peek(), "and") {
		p.next()
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	return join(KindAnd, args), nil
}

// join returns the one expression or their conjunction/disjunction,
// flattening nested ones of the same kind.
func join(k Kind, args []*Expr) *Expr {
	if len(args) == 1 {
		return args[0]
	}
	var flat []*Expr
	for _, a := range args {
		if a.Kind == k {
			flat = append(flat, a.Args...)
		} else {
			flat = append(flat, a)
		}
	}
	return &Expr{Kind: k, Args: flat}
}

func not(e *Expr) *Expr {
	if e.Kind == KindNot {
		return e.Args[0]
	}
	return &Expr{Kind: KindNot, Args: []*Expr{e}}
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > MaxDepth {
		return &Error{Pos: pos, Msg: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	return nil
}

func (p *parser) unary() (*Expr, error) {
	t := p.peek()
	switch {
	case keyword(t, "not"):
		p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		e, err := p.unary()
		p.depth--
		if err != nil {
			return nil, err
		}
		return not(e), nil
	case t.kind == tLParen:
		p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		e, err := p.or()
		p.depth--
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tRParen {
			if c.kind == tEOF {
				return nil, &Error{Pos: t.pos, Msg: `unbalanced "(": missing ")"`}
			}
			return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf(`expected ")", "and" or "or", found %s`, c.describe())}
		}
		p.next()
		return e, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (*Expr, error) {
	ft := p.next()
	switch {
	case ft.kind == tEOF:
		return nil, &Error{Pos: ft.pos, Msg: "expected a comparison (field op value), found end of input"}
	case ft.kind != tWord || keyword(ft, "and") || keyword(ft, "or") || keyword(ft, "in"):
		return nil, &Error{Pos: ft.pos, Msg: fmt.Sprintf("expected a field name, found %s", ft.describe())}
	}
	f, ok := byName[ft.text]
	if !ok {
		f, ok = byName[strings.ToLower(ft.text)]
	}
	if !ok {
		return nil, &Error{Pos: ft.pos, Msg: fmt.Sprintf("unknown field %q%s", ft.text, suggest(ft.text))}
	}
	ot := p.next()
	negate := false
	var op Op
	switch {
	case keyword(ot, "not"):
		it := p.next()
		if !keyword(it, "in") {
			return nil, &Error{Pos: it.pos, Msg: fmt.Sprintf(`expected "in" after "not", found %s`, it.describe())}
		}
		negate, op = true, In
	case keyword(ot, "in"):
		op = In
	case ot.kind == tOp:
		switch ot.text {
		case "=":
			op = Eq
		case "!=":
			op, negate = Eq, true
		case "<":
			op = Lt
		case "<=":
			op = Le
		case ">":
			op = Gt
		case ">=":
			op = Ge
		case "~":
			op = Match
		case "!~":
			op, negate = Match, true
		}
	case ot.kind == tEOF:
		return nil, &Error{Pos: ot.pos, Msg: fmt.Sprintf("expected an operator after %q, found end of input", ft.text)}
	default:
		return nil, &Error{Pos: ot.pos, Msg: fmt.Sprintf("expected an operator (= != < <= > >= ~ !~ in) after %q, found %s", ft.text, ot.describe())}
	}
	if err := checkOp(f, op, ot); err != nil {
		return nil, err
	}

	tmpl := Cmp{Type: f.Type, Op: op, Pos: ft.pos}
	if op == In {
		if err := p.list(f, &tmpl); err != nil {
			return nil, err
		}
	} else {
		vt := p.next()
		if err := setValue(f, &tmpl, vt); err != nil {
			return nil, err
		}
	}
	var args []*Expr
	for _, base := range f.bases() {
		c := tmpl
		c.Field = base
		args = append(args, &Expr{Kind: KindCmp, Cmp: &c})
	}
	e := join(KindOr, args)
	if negate {
		e = not(e)
	}
	return e, nil
}

// checkOp rejects operators that do not fit the field's type.
func checkOp(f *Field, op Op, ot token) error {
	switch f.Type {
	case String:
		if op != Eq && op != Match && op != In {
			return &Error{Pos: ot.pos, Msg: fmt.Sprintf("operator %s does not apply to %s, a string (use = != ~ !~ in)", ot.text, f.Name)}
		}
	case Bool:
		if op != Eq {
			return &Error{Pos: ot.pos, Msg: fmt.Sprintf("operator %s does not apply to %s, a boolean (use = or !=)", ot.text, f.Name)}
		}
	default:
		if op == Match {
			return &Error{Pos: ot.pos, Msg: fmt.Sprintf("operator %s does not apply to %s, a %s (use = != < <= > >= in)", ot.text, f.Name, f.Type)}
		}
	}
	return nil
}

// list parses "( v, v, ... )" into c.Strs or c.Ints.
func (p *parser) list(f *Field, c *Cmp) error {
	lp := p.next()
	if lp.kind != tLParen {
		return &Error{Pos: lp.pos, Msg: fmt.Sprintf(`expected "(" after "in", found %s`, lp.describe())}
	}
	for {
		vt := p.next()
		if vt.kind == tRParen && len(c.Strs)+len(c.Ints) == 0 {
			return &Error{Pos: vt.pos, Msg: "empty in list"}
		}
		var one Cmp
		one.Type, one.Op = c.Type, Eq
		if err := setValue(f, &one, vt); err != nil {
			return err
		}
		if c.Type == String {
			c.Strs = append(c.Strs, one.Str)
		} else {
			c.Ints = append(c.Ints, one.Int)
		}
		if len(c.Strs)+len(c.Ints) > MaxList {
			return &Error{Pos: vt.pos, Msg: fmt.Sprintf("in list longer than %d values", MaxList)}
		}
		sep := p.next()
		if sep.kind == tRParen {
			break
		}
		if sep.kind != tComma {
			if sep.kind == tEOF {
				return &Error{Pos: lp.pos, Msg: `unbalanced "(": missing ")" of the in list`}
			}
			return &Error{Pos: sep.pos, Msg: fmt.Sprintf(`expected "," or ")" in the in list, found %s`, sep.describe())}
		}
	}
	slices.Sort(c.Strs)
	c.Strs = slices.Compact(c.Strs)
	slices.Sort(c.Ints)
	c.Ints = slices.Compact(c.Ints)
	return nil
}

// setValue parses the value token vt for field f into c.
func setValue(f *Field, c *Cmp, vt token) error {
	if vt.kind != tWord && vt.kind != tString {
		return &Error{Pos: vt.pos, Msg: fmt.Sprintf("expected a value for %s, found %s", f.Name, vt.describe())}
	}
	v := vt.text
	bad := func(want string) error {
		return &Error{Pos: vt.pos, Msg: fmt.Sprintf("%s is a %s: want %s, found %s", f.Name, f.Type, want, vt.describe())}
	}
	if vt.kind == tWord {
		for _, kw := range []string{"and", "or", "not", "in"} {
			if strings.EqualFold(v, kw) {
				return &Error{Pos: vt.pos, Msg: fmt.Sprintf("expected a value for %s, found the keyword %q (quote it to compare with that word)", f.Name, v)}
			}
		}
	}
	switch f.Type {
	case String:
		if c.Op == Match {
			re, err := regexp.Compile(v)
			if err != nil {
				return &Error{Pos: vt.pos, Msg: fmt.Sprintf("bad regular expression: %v", err)}
			}
			c.Re = re
			return nil
		}
		c.Str = v
	case Int:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return bad("an integer")
		}
		c.Int = n
	case Bool:
		switch strings.ToLower(v) {
		case "true":
			c.Bool = true
		case "false":
			c.Bool = false
		default:
			return bad("true or false")
		}
	case Duration:
		us, ok := parseDuration(v)
		if !ok {
			return bad("a duration with a unit such as 250ms, 1.5s or 100us")
		}
		c.Int = us
	case Time:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return bad("an RFC 3339 time such as 2024-01-01T07:00:00Z")
		}
		c.Int = t.UnixMicro()
	}
	return nil
}

// parseDuration parses a Go duration ("250ms", "1.5s", "1m30s", "100us",
// "0") into microseconds, truncating toward zero.
func parseDuration(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d == math.MinInt64 {
		return 0, false
	}
	return d.Microseconds(), true
}

// suggest returns a hint naming the closest known field, if any is close.
func suggest(name string) string {
	best, bestD := "", 3
	for _, f := range fields {
		if d := distance(strings.ToLower(name), f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	}
	if best == "" {
		return " (see /api/v1/fields)"
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// distance is the Levenshtein distance of a and b (bounded inputs: field
// names and one word of at most MaxLen bytes; it stops early for long ones).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
