//go:build !unix

package config_test

import "testing"

func specialFiles(t *testing.T, dir string) []struct{ path, want string } { return nil }
