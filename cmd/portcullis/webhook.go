package main

import (
	"fmt"
	"io"
	"os"

	"github.com/portcullis-dev/portcullis/internal/webhook"
)

func runWebhook(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "sign":
			return webhook.SignCommand(args[1:], stdout, stderr)
		case "verify":
			return webhook.VerifyCommand(args[1:], os.Stdin, stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, "Usage: portcullis webhook sign|verify [flags]   (portcullis webhook sign --help)")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return 0
	}
	return 2
}
