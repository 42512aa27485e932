package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline"
)

// ValidRunID reports whether id can name a run (it becomes a path element
// of ledgers, dead letters, archives and state): 1 to 128 letters, digits,
// '.', '_' and '-', and neither "." nor "..". Served pipeline names follow
// the same rule.
func ValidRunID(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// PrintError writes err to w as "bulkflow: " lines, one per line of its
// text (a pipeline file's errors name a file:line each).
func PrintError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "bulkflow: %s\n", line)
	}
}

// ParseFlags is fs.Parse that first looks for a flag fs does not define
// and names the closest one it does: `bulkflow run --reprot x` says
// "unknown flag --reprot (did you mean --report?)" instead of printing
// the whole usage. Flags may stand between positional arguments, as
// parseInterspersed-style callers allow; "--" ends the flags.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if name := unknownFlag(fs, args); name != "" {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		hint := ""
		if m := pipeline.Closest(name, names); m != "" {
			hint = fmt.Sprintf(" (did you mean --%s?)", m)
		}
		err := fmt.Errorf("unknown flag --%s%s; `bulkflow help %s` lists its flags", name, hint, fs.Name())
		fmt.Fprintf(fs.Output(), "bulkflow: %s: %v\n", fs.Name(), err)
		return err
	}
	return fs.Parse(args)
}

// unknownFlag returns the name of the first flag in args that fs does not
// define ("" if none), skipping the values of flags that take one.
func unknownFlag(fs *flag.FlagSet, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, inline := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if name == "h" || name == "help" {
			return ""
		}
		f := fs.Lookup(name)
		if f == nil {
			return name
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); (!ok || !b.IsBoolFlag()) && !inline {
			i++ // the flag's value
		}
	}
	return ""
}
