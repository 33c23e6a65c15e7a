// Command gluegen writes the Glue table definitions of the AWS Terraform
// module from schema/ (infra.GlueTablesJSON). `go generate ./infra` runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/flowlake/flowlake/infra"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gluegen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gluegen", flag.ContinueOnError)
	out := fs.String("o", infra.GlueTablesFile, "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := infra.GlueTablesJSON()
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}
