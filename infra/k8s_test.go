package infra

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// k8sManifest is what the test reads of a manifest: the ConfigMap's data
// and the first container of the Deployment.
type k8sManifest struct {
	config    map[string]string
	args      []string
	env       []string // names of the container's env entries
	port      float64  // the container's first port
	probePath string   // readiness probe path
}

func readManifest(t *testing.T, file string) k8sManifest {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m k8sManifest
	kinds := map[string]int{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var obj struct {
			Kind string            `json:"kind"`
			Data map[string]string `json:"data"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args []string `json:"args"`
							Env  []struct {
								Name string `json:"name"`
							} `json:"env"`
							Ports []struct {
								ContainerPort float64 `json:"containerPort"`
							} `json:"ports"`
							ReadinessProbe struct {
								HTTPGet struct {
									Path string `json:"path"`
								} `json:"httpGet"`
							} `json:"readinessProbe"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(js, &obj); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		kinds[obj.Kind]++
		switch obj.Kind {
		case "ConfigMap":
			m.config = obj.Data
		case "Deployment":
			c := obj.Spec.Template.Spec.Containers[0]
			m.args = c.Args
			for _, e := range c.Env {
				m.env = append(m.env, e.Name)
			}
			if len(c.Ports) > 0 {
				m.port = c.Ports[0].ContainerPort
			}
			m.probePath = c.ReadinessProbe.HTTPGet.Path
		}
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service"} {
		if kinds[k] != 1 {
			t.Fatalf("%s: %d %s objects, want 1", file, kinds[k], k)
		}
	}
	return m
}

// TestK8sManifests checks the functions host and query server manifests
// against the flowlake binary: every FLOWLAKE_ setting is one the
// container's command documents (a flag's env variable or a listed
// variable), the listen address's port is the container port, the store
// is set, and the readiness probe is the command's health endpoint.
func TestK8sManifests(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "flowlake")
	build := exec.Command("go", "build", "-o", bin, "../cmd/flowlake")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flowlake: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		file, store, probe string
		args               []string
	}{
		{"k8s/functions-host.yaml", "FLOWLAKE_STORE", "/healthz", []string{"functions", "serve"}},
		{"k8s/query-server.yaml", "FLOWLAKE_LAKE", "/api/v1/health", []string{"serve"}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			m := readManifest(t, tc.file)
			if strings.Join(m.args, " ") != strings.Join(tc.args, " ") {
				t.Fatalf("args %v, want %v", m.args, tc.args)
			}
			help, _ := exec.Command(bin, append(tc.args, "-h")...).CombinedOutput()
			if !strings.Contains(string(help), "usage: flowlake "+strings.Join(tc.args, " ")) {
				t.Fatalf("flowlake %s -h:\n%s", strings.Join(tc.args, " "), help)
			}
			vars := m.env
			for k := range m.config {
				vars = append(vars, k)
			}
			n := 0
			for _, v := range vars {
				if !strings.HasPrefix(v, "FLOWLAKE_") {
					continue
				}
				n++
				if !strings.Contains(string(help), v) {
					t.Errorf("%s is not a setting of flowlake %s", v, strings.Join(tc.args, " "))
				}
			}
			if n < 3 {
				t.Errorf("only %d FLOWLAKE_ settings", n)
			}
			if !strings.HasPrefix(m.config[tc.store], "s3://") {
				t.Errorf("%s = %q, want an s3:// store", tc.store, m.config[tc.store])
			}
			_, port, err := net.SplitHostPort(m.config["FLOWLAKE_ADDR"])
			if err != nil || port != fmt.Sprint(m.port) {
				t.Errorf("FLOWLAKE_ADDR %q, container port %v", m.config["FLOWLAKE_ADDR"], m.port)
			}
			if m.probePath != tc.probe {
				t.Errorf("readiness probe %q, want %q", m.probePath, tc.probe)
			}
		})
	}
}
