// Hello is the smallest unikernel: it prints a greeting with its arguments
// and exits. Built normally it is an ordinary Linux program; built with
// anyk build it boots on its own:
//
//	go run ./cmd/anyk build -o hello.img ./examples/hello
//	go run ./cmd/anyk run hello.img -- world
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	_ "github.com/anykernel/anykernel/hal/pc"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	who := "anykernel"
	if len(args) > 0 {
		who = strings.Join(args, " ")
	}
	_, err := fmt.Fprintf(stdout, "Hello, %s!\n", who)
	return err
}
