// gen-default prints the config every upstream validation case starts from:
// opencontainers/runtime-tools validation/util's GetDefaultGenerator, i.e.
// generate.New("linux") with the root path set to "." and the process args
// set to upstream's in-container checker. It calls upstream's generator
// (Debian: golang-github-opencontainers-runtime-tools-dev) and saves the
// config the way upstream's Runtime.SetConfig does (Generator.Save, default
// export options), to stdout.
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run gen-default.go > default-config.json
package main

import (
	"fmt"
	"os"

	"github.com/opencontainers/runtime-tools/generate"
)

func main() {
	g, err := generate.New("linux")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	g.SetRootPath(".")
	g.SetProcessArgs([]string{"/runtimetest", "--path=/"})
	if err := g.Save(os.Stdout, generate.ExportOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println()
}
