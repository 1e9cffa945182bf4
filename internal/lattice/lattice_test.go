package lattice

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// moduleRoot returns the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// goList runs `go list -deps`-style queries and decodes the JSON stream.
func goList(t *testing.T, args ...string) []Package {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Deps,Error"}, args...)...)
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Deps       []string
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		require.Nil(t, p.Error, "go list error in %s", p.ImportPath)
		pkgs = append(pkgs, Package{ImportPath: p.ImportPath, Deps: p.Deps})
	}
	return pkgs
}

// TestLattice checks the whole module as it is.
func TestLattice(t *testing.T) {
	pkgs := goList(t, "./...")
	require.NotEmpty(t, pkgs)
	var names []string
	for _, p := range pkgs {
		names = append(names, p.ImportPath)
	}
	require.Contains(t, names, Module+"/hal", "the check must see the hal package")
	for _, v := range Check(pkgs) {
		t.Errorf("lattice violation: %v", v)
	}
}

// pkg builds a Package at module-relative path r; deps starting with "./"
// are module-relative too.
func pkg(r string, deps ...string) Package {
	for i, d := range deps {
		if strings.HasPrefix(d, "./") {
			deps[i] = Module + "/" + d[2:]
		}
	}
	return Package{ImportPath: Module + "/" + r, Deps: deps}
}

func TestCheckRules(t *testing.T) {
	cases := []struct {
		name string
		pkg  Package
		bad  bool
	}{
		{"hal on std", pkg("hal", "errors", "fmt", "encoding/binary"), false},
		{"hal on x/sys", pkg("hal", "errors", "golang.org/x/sys/unix"), true},
		{"hal on testify", pkg("hal", "github.com/stretchr/testify/assert"), true},
		{"haltest on hal", pkg("hal/haltest", "testing", "./hal"), false},
		{"haltest on mem", pkg("hal/haltest", "./hal", "./hal/mem"), true},
		{"mem on hal", pkg("hal/mem", "./hal", "math/rand/v2"), false},
		{"mem on host", pkg("hal/mem", "./hal", "./hal/host"), true},
		{"host on x/sys", pkg("hal/host", "./hal", "golang.org/x/sys/unix"), false},
		{"host on mem", pkg("hal/host", "./hal/mem"), true},
		{"virtio on mem", pkg("hal/virtio/model", "./hal/mem"), false},
		{"virtio on host", pkg("hal/virtio", "./hal/host"), true},
		{"pc on virtio", pkg("hal/pc", "./hal/virtio/net"), false},
		{"pc on mem", pkg("hal/pc", "./hal/mem"), true},
		{"blockfs on hal", pkg("blockfs", "./hal", "hash/crc32"), false},
		{"blockfs on mem", pkg("blockfs", "./hal", "./hal/mem"), true},
		{"netstack on host", pkg("netstack/dhcp", "./hal/host"), true},
		{"sched on pc", pkg("sched/threads", "./hal/pc"), true},
		{"netstack on gvisor", pkg("netstack", "gvisor.dev/gvisor/pkg/tcpip"), false},
		{"compat on gvisor", pkg("compat/net", "gvisor.dev/gvisor/pkg/tcpip"), false},
		{"blockfs on gvisor", pkg("blockfs", "gvisor.dev/gvisor/pkg/buffer"), true},
		{"console on gvisor", pkg("console", "gvisor.dev/gvisor/pkg/log"), true},
		{"example on gvisor", pkg("examples/httpd", "gvisor.dev/gvisor/pkg/tcpip", "./hal/host"), false},
		{"fusefs on go-fuse", pkg("blockfs/fusefs", "github.com/hanwen/go-fuse/v2/fs"), false},
		{"cmd on go-fuse", pkg("cmd/blockfs", "github.com/hanwen/go-fuse/v2/fuse"), false},
		{"blockfs on go-fuse", pkg("blockfs", "github.com/hanwen/go-fuse/v2/fuse"), true},
		{"netstack on go-fuse", pkg("netstack", "github.com/hanwen/go-fuse/v2/fuse"), true},
		{"example on go-fuse", pkg("examples/httpd", "github.com/hanwen/go-fuse/v2/fuse"), true},
		{"outside module ignored", Package{ImportPath: "example.com/x", Deps: []string{"gvisor.dev/gvisor/pkg/tcpip"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Check([]Package{c.pkg})
			if c.bad {
				assert.NotEmpty(t, v, "expected a violation")
			} else {
				assert.Empty(t, v)
			}
		})
	}
}

// requires reports whether go.mod requires module mod.
func requires(t *testing.T, mod string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "go.mod"))
	require.NoError(t, err)
	return bytes.Contains(b, []byte(mod+" "))
}

// TestCheckCatchesRealImport proves the whole path — go list on real source
// plus Check — fails on a deliberate bad import. The bad file is added
// through go list's -overlay, to an existing package or as a new package
// inside a component, so the source tree is never touched.
func TestCheckCatchesRealImport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list on the module")
	}
	root := moduleRoot(t)
	cases := []struct {
		name string
		dir  string // package directory, relative to the module root
		imp  string
		rule string
		need string // module that must be in go.mod for the case to apply
	}{
		{"hal imports a third-party module", "hal", "github.com/stretchr/testify/assert", "standard library", ""},
		{"haltest imports a non-hal package", "hal/haltest", Module + "/internal/testenv", "standard library", ""},
		{"component imports a backend", "blockfs/zzlatticeprobe", Module + "/hal/mem", "must not depend on a backend", ""},
		{"backend imports another backend", "hal/mem/zzlatticeprobe", Module + "/hal/host", "must not depend on each other", ""},
		{"blockfs imports gVisor", "blockfs/zzlatticeprobe", "gvisor.dev/gvisor/pkg/tcpip", "gVisor", "gvisor.dev/gvisor"},
		{"netstack imports go-fuse", "netstack/zzlatticeprobe", "github.com/hanwen/go-fuse/v2/fuse", "go-fuse", "github.com/hanwen/go-fuse/v2"},
	}
	for _, c := range cases {
		if c.need != "" && !requires(t, c.need) {
			continue // the module is not in use yet, so nothing can import it
		}
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			name := filepath.Base(c.dir)
			src := filepath.Join(tmp, "probe.go")
			require.NoError(t, os.WriteFile(src, []byte("package "+name+"\n\nimport _ \""+c.imp+"\"\n"), 0o644))
			overlay := filepath.Join(tmp, "overlay.json")
			b, err := json.Marshal(map[string]any{"Replace": map[string]string{
				filepath.Join(root, c.dir, "zz_lattice_probe.go"): src,
			}})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(overlay, b, 0o644))
			pkgs := goList(t, "-overlay", overlay, "./"+c.dir)
			require.Len(t, pkgs, 1)
			require.Contains(t, pkgs[0].Deps, c.imp)
			v := Check(pkgs)
			require.NotEmpty(t, v, "bad import of %s into %s was not caught", c.imp, c.dir)
			found := false
			for _, x := range v {
				found = found || strings.Contains(x.Rule, c.rule)
			}
			assert.True(t, found, "violations %v do not name the rule %q", v, c.rule)
		})
	}
}
