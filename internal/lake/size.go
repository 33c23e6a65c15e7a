package lake

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// rowSizer prepares rows of one flat struct type for writing: it replaces
// invalid UTF-8 in string columns (Parquet STRING must be UTF-8, and DuckDB
// refuses to read a file that breaks this), and estimates the row's
// uncompressed Parquet size (fixed-width values, plus length prefix and bytes
// of every string, plus a level overhead per list element) and the Go memory
// a buffered row holds.
type rowSizer struct {
	fixed   int64 // fixed-width column bytes per row
	structB int64 // size of the Go struct itself
	strs    []int // indices of string fields
	lists   []int // indices of []string fields
}

// Per-value overheads used by the estimate.
const (
	lengthPrefix   = 4  // PLAIN byte array length prefix
	listElemLevels = 4  // repetition + definition levels and length of a list element
	stringHeader   = 16 // Go string header of a list element
)

// newRowSizer plans the estimate for struct type t. It fails for field
// types that the lake's row types do not use.
func newRowSizer(t reflect.Type) (*rowSizer, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("row type %s is not a struct", t)
	}
	s := &rowSizer{structB: int64(t.Size())}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("parquet") == "-" {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Bool:
			s.fixed++
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Float32:
			s.fixed += 4
		case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Float64:
			s.fixed += 8
		case reflect.String:
			s.fixed += lengthPrefix
			s.strs = append(s.strs, i)
		case reflect.Slice:
			if f.Type.Elem().Kind() != reflect.String {
				return nil, fmt.Errorf("field %s of %s: unsupported type %s", f.Name, t, f.Type)
			}
			s.lists = append(s.lists, i)
		default:
			return nil, fmt.Errorf("field %s of %s: unsupported type %s", f.Name, t, f.Type)
		}
	}
	return s, nil
}

// prepare repairs invalid UTF-8 in the strings of the addressable row v,
// and returns the row's estimated uncompressed Parquet bytes, the Go memory
// it holds and how many string values it repaired.
func (s *rowSizer) prepare(v reflect.Value) (parquetBytes, memBytes int64, repaired int) {
	var strBytes, listBytes, listElems int64
	for _, i := range s.strs {
		f := v.Field(i)
		if repairUTF8(f) {
			repaired++
		}
		strBytes += int64(f.Len())
	}
	for _, i := range s.lists {
		l := v.Field(i)
		n := l.Len()
		listElems += int64(n)
		cloned := false
		for j := range n {
			e := l.Index(j)
			if !utf8.ValidString(e.String()) {
				if !cloned {
					// The backing array is shared with the caller's row.
					c := reflect.MakeSlice(l.Type(), n, n)
					reflect.Copy(c, l)
					l.Set(c)
					cloned = true
				}
				e = l.Index(j)
				repairUTF8(e)
				repaired++
			}
			listBytes += int64(e.Len())
		}
	}
	parquetBytes = s.fixed + strBytes + listBytes + listElems*(lengthPrefix+listElemLevels)
	memBytes = s.structB + strBytes + listBytes + listElems*stringHeader
	return parquetBytes, memBytes, repaired
}

// repairUTF8 replaces each run of invalid UTF-8 bytes in the settable string
// f with U+FFFD and reports whether it did.
func repairUTF8(f reflect.Value) bool {
	str := f.String()
	if utf8.ValidString(str) {
		return false
	}
	f.SetString(strings.ToValidUTF8(str, string(utf8.RuneError)))
	return true
}
