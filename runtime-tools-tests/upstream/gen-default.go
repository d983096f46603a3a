// gen-default prints the config every upstream validation case starts from:
// opencontainers/runtime-tools validation/util's GetDefaultGenerator, i.e.
// generate.New("linux") with the root path set to "." and the process args
// set to upstream's in-container checker. It calls upstream's generator
// (Debian: golang-github-opencontainers-runtime-tools-dev) and saves the
// config the way upstream's Runtime.SetConfig does (Generator.Save, default
// export options), to stdout.
//
// With an argument it applies, on top of that default, the generator calls
// of the upstream case whose result depends on upstream's generator code
// (so the suite need not re-implement it):
//
//	privileged  g.SetupPrivileged(true)  (process_capabilities, linux_rootfs_propagation)
//	seccomp     g.SetDefaultSeccompAction("allow"); g.SetSyscallAction({errno, getcwd})  (linux_seccomp)
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run gen-default.go [VARIANT] > FILE
package main

import (
	"fmt"
	"os"

	"github.com/opencontainers/runtime-tools/generate"
	"github.com/opencontainers/runtime-tools/generate/seccomp"
)

func main() {
	g, err := generate.New("linux")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	g.SetRootPath(".")
	g.SetProcessArgs([]string{"/runtimetest", "--path=/"})
	variant := ""
	if len(os.Args) > 1 {
		variant = os.Args[1]
	}
	switch variant {
	case "":
	case "privileged":
		g.SetupPrivileged(true)
	case "seccomp":
		err = g.SetDefaultSeccompAction("allow")
		if err == nil {
			err = g.SetSyscallAction(seccomp.SyscallOpts{Action: "errno", Syscall: "getcwd"})
		}
	default:
		err = fmt.Errorf("unknown variant %q", variant)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := g.Save(os.Stdout, generate.ExportOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println()
}
