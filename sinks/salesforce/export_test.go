package salesforce_test

import (
	"os"
	"unicode/utf8"
)

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }

func isValidUTF8(s string) bool { return utf8.ValidString(s) }
