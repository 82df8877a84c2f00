//go:build !linux

package main

import "errors"

func floorMain([]string) (bool, int) { return false, 0 }

func floorCommand(string, string) ([]string, error) {
	return nil, errors.New("the kernel floor runs on Linux only")
}
