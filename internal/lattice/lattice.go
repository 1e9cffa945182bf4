package lattice

import (
	"fmt"
	"sort"
	"strings"
)

// Module is the import path of the anykernel module.
const Module = "github.com/anykernel/anykernel"

const (
	gvisor = "gvisor.dev/gvisor"
	gofuse = "github.com/hanwen/go-fuse/v2"
)

// Package is what the checker needs to know of one package: its import path
// and the import paths of everything it compiles (go list's Deps).
type Package struct {
	ImportPath string
	Deps       []string
}

// Violation is one broken rule.
type Violation struct {
	Package string // the importing package
	Dep     string // the dependency it must not have
	Rule    string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s depends on %s: %s", v.Package, v.Dep, v.Rule)
}

// rel returns p relative to the module ("" for the module root), and
// whether p is in the module at all.
func rel(p string) (string, bool) {
	if p == Module {
		return "", true
	}
	if r, ok := strings.CutPrefix(p, Module+"/"); ok {
		return r, true
	}
	return "", false
}

// under reports whether rel path r is dir or inside it.
func under(r, dir string) bool { return r == dir || strings.HasPrefix(r, dir+"/") }

func underAny(r string, dirs ...string) bool {
	for _, d := range dirs {
		if under(r, d) {
			return true
		}
	}
	return false
}

// isStd reports whether an import path belongs to the standard library: its
// first element has no dot.
func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

func isModule(p, mod string) bool { return p == mod || strings.HasPrefix(p, mod+"/") }

var backends = []string{"hal/mem", "hal/host", "hal/virtio", "hal/pc"}

// backendOf returns the backend directory r belongs to, or "".
func backendOf(r string) string {
	for _, b := range backends {
		if under(r, b) {
			return b
		}
	}
	return ""
}

// allowedBackendDeps lists which backends each backend may depend on.
var allowedBackendDeps = map[string][]string{
	"hal/virtio": {"hal/mem"},
	"hal/pc":     {"hal/virtio"},
}

var components = []string{"netstack", "blockfs", "console", "sched", "compat"}

// programs are packages that choose backends and may compile anything.
func isProgram(r string) bool { return underAny(r, "examples", "cmd") }

// Check applies the lattice rules to pkgs and returns the violations, sorted.
func Check(pkgs []Package) []Violation {
	var out []Violation
	add := func(p, d, rule string) { out = append(out, Violation{p, d, rule}) }
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		for _, d := range p.Deps {
			dr, inModule := rel(d)
			switch {
			case r == "hal" || r == "hal/haltest":
				if !isStd(d) && !(inModule && dr == "hal") {
					add(p.ImportPath, d, "hal and hal/haltest may depend only on the standard library (and haltest on hal)")
				}
			}
			if b := backendOf(r); b != "" && inModule {
				if db := backendOf(dr); db != "" && db != b {
					allowed := false
					for _, a := range allowedBackendDeps[b] {
						allowed = allowed || a == db
					}
					if !allowed {
						add(p.ImportPath, d, "backends must not depend on each other (only hal/virtio→hal/mem and hal/pc→hal/virtio)")
					}
				}
			}
			if underAny(r, components...) && inModule && backendOf(dr) != "" {
				add(p.ImportPath, d, "components take hal interfaces and must not depend on a backend; programs and tests choose backends")
			}
			if isModule(d, gvisor) && !underAny(r, "netstack", "compat") && !isProgram(r) {
				add(p.ImportPath, d, "gVisor may be compiled only for netstack and compat")
			}
			if isModule(d, gofuse) && !underAny(r, "blockfs/fusefs", "cmd") {
				add(p.ImportPath, d, "go-fuse may be compiled only for blockfs/fusefs and cmd")
			}
		}
	}
	// One violation per (package, rule) pair is enough to act on; keep the
	// first dependency found for each.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Dep < out[j].Dep
	})
	var dedup []Violation
	for i, v := range out {
		if i > 0 && v.Package == out[i-1].Package && v.Rule == out[i-1].Rule {
			continue
		}
		dedup = append(dedup, v)
	}
	return dedup
}
