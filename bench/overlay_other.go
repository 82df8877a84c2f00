//go:build !linux

package main

import (
	"errors"
	"io"

	"github.com/topolab/topo/internal/benchtopo"
)

func pingerMain() {}

func parseMesh(string) (benchtopo.Mesh, error) {
	return benchtopo.Mesh{}, errors.New("-overlay needs Linux: its hosts are network namespaces")
}

func runOverlay(*options, benchtopo.Mesh, io.Writer, io.Writer) error {
	return errors.New("-overlay needs Linux")
}
