package main

import (
	"io"

	"github.com/portcullis-dev/portcullis/internal/mint"
)

func runCA(args []string, stdout, stderr io.Writer) int { return mint.Command(args, stdout, stderr) }
