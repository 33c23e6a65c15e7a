package agent

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// StringList is a repeatable string flag. In a config file it takes a
// list (or one string).
type StringList []string

// String implements flag.Value.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value: it appends.
func (l *StringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// ParseFlags parses a command line in which flags and arguments may be
// interleaved (`--pcap a.pcap b.pcap --pace`), then fills each flag that
// the command line did not set from, in this order:
//
//  1. the environment: envPrefix + the flag name upper-cased with '-'
//     turned into '_' (--status-every: FLOWLAKE_STATUS_EVERY);
//  2. the config file named by the flag configFlag (a command-line flag or
//     its variable): a JSON or YAML mapping whose keys are flag names and
//     whose values are strings, numbers, booleans, or lists for repeatable
//     flags (StringList).
//
// So flags win over the environment, which wins over the file, which wins
// over the defaults. It returns the arguments that are not flags. Unknown
// keys in the file and bad values are errors.
func ParseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, envPrefix, configFlag string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		i := 0
		for i < len(args) && (args[i] == "-" || !strings.HasPrefix(args[i], "-")) {
			i++
		}
		rest = append(rest, args[:i]...)
		if i == len(args) {
			break
		}
		args = args[i:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %v", name, v, err))
			}
			set[f.Name] = true
		}
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if configFlag == "" {
		return rest, nil
	}
	cf := fs.Lookup(configFlag)
	if cf == nil || cf.Value.String() == "" {
		return rest, nil
	}
	if err := applyFile(fs, cf.Value.String(), set); err != nil {
		return nil, err
	}
	return rest, nil
}

// applyFile sets the flags not in set from a JSON or YAML file.
func applyFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	js, err := yaml.YAMLToJSON(b) // JSON is YAML too
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return fmt.Errorf("config file %s: want a mapping of flag names to values: %w", path, err)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil {
			return fmt.Errorf("config file %s: unknown setting %q (settings are the flag names: run with -h)", path, name)
		}
		if set[name] {
			continue
		}
		vals, err := configValues(m[name])
		if err == nil {
			if _, multi := f.Value.(*StringList); !multi && len(vals) != 1 {
				err = fmt.Errorf("want one value, not %d", len(vals))
			}
		}
		for _, v := range vals {
			if err == nil {
				err = fs.Set(name, v)
			}
		}
		if err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, name, err)
		}
	}
	return nil
}

// configValues turns a decoded JSON value into flag values.
func configValues(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case bool:
		return []string{strconv.FormatBool(v)}, nil
	case float64:
		return []string{strconv.FormatFloat(v, 'f', -1, 64)}, nil
	case nil:
		return []string{""}, nil
	case []any:
		var out []string
		for _, e := range v {
			s, err := configValues(e)
			if err != nil {
				return nil, err
			}
			if _, nested := e.([]any); nested {
				return nil, errors.New("nested lists are not settings")
			}
			out = append(out, s...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T is not a setting value", v)
}
