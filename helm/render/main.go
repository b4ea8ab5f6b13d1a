// Command helm-render renders a Helm chart the way `helm template` does, for machines without
// a Helm binary: Go text/template with the sprig function library, Helm's builtins (include,
// tpl, required, fail, toYaml, fromYaml, toJson, fromJson, lookup), values from values.yaml
// coalesced with -f files, and the chart's values.schema.json checked against the result.
//
// It implements what the Sluice chart uses, not all of Helm: no subcharts, no hooks, no .Files,
// no --set. Output matches `helm template`: every document preceded by "---" and a
// "# Source:" comment, sorted in Helm's install order.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/semver/v3"
	"github.com/Masterminds/sprig/v3"
	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

// Metadata mirrors the fields of Helm's chart.Metadata that templates read as .Chart.X.
type Metadata struct {
	APIVersion  string   `json:"apiVersion"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	AppVersion  string   `json:"appVersion"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	KubeVersion string   `json:"kubeVersion"`
	Home        string   `json:"home"`
	Keywords    []string `json:"keywords"`
	Sources     []string `json:"sources"`
	Icon        string   `json:"icon"`
}

type Release struct {
	Name      string
	Namespace string
	IsInstall bool
	IsUpgrade bool
	Revision  int
	Service   string
}

type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

// VersionSet is .Capabilities.APIVersions: the built-in groups every supported cluster serves, no CRDs.
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

func main() {
	var files valueFiles
	name := flag.String("name", "sluice", "release name (.Release.Name)")
	namespace := flag.String("namespace", "default", "release namespace (.Release.Namespace)")
	kubeVersion := flag.String("kube-version", "v1.31.0", "Kubernetes version for .Capabilities.KubeVersion")
	notes := flag.Bool("notes", false, "print the rendered templates/NOTES.txt instead of the manifests")
	flag.Var(&files, "f", "values file merged over the chart's values.yaml (repeatable; later wins)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: helm-render [--name NAME] [--namespace NS] [-f values.yaml]... [--notes] CHART_DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *name, *namespace, *kubeVersion, files, *notes)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func readYAMLMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// coalesce merges src over dst like Helm's value coalescing: maps merge key by key, anything
// else replaces, and a null in src deletes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

func validateSchema(chartDir string, values map[string]interface{}) error {
	schema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	doc, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("values.schema.json: %w", err)
	}
	if result.Valid() {
		return nil
	}
	var b strings.Builder
	b.WriteString("values don't meet the specifications of the schema(s) in the following chart(s):\n")
	for _, e := range result.Errors() {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// funcMap is sprig's text functions less env/expandenv (as in Helm) plus Helm's own;
// include and tpl are bound to the template set once it exists.
func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toYaml":   toYAML,
		"fromYaml": fromYAML,
		"toJson":   toJSON,
		"fromJson": fromJSON,
		"required": func(msg string, v interface{}) (interface{}, error) {
			if v == nil {
				return v, errors.New(msg)
			}
			if s, ok := v.(string); ok && s == "" {
				return v, errors.New(msg)
			}
			return v, nil
		},
		"fail": func(msg string) (string, error) { return "", errors.New(msg) },
		// Like `helm template`, which has no cluster to ask.
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		"include": func(string, interface{}) (string, error) { return "", errors.New("include: not bound") },
		"tpl":     func(string, interface{}) (string, error) { return "", errors.New("tpl: not bound") },
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

var installOrder = []string{"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
	"PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
	"ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
	"IngressClass", "Ingress", "APIService"}

type manifest struct {
	source string
	kind   string
	body   string
}

var kindRe = regexp.MustCompile(`(?m)^kind:\s*["']?([A-Za-z]+)`)
var sepRe = regexp.MustCompile(`(?m)^---\s*$`)

func render(chartDir, releaseName, namespace, kubeVersion string, files []string, notesOnly bool) (string, error) {
	var meta Metadata
	chartYAML, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	if err := yaml.Unmarshal(chartYAML, &meta); err != nil {
		return "", fmt.Errorf("Chart.yaml: %w", err)
	}
	if meta.Name == "" || meta.Version == "" {
		return "", errors.New("Chart.yaml: name and version are required")
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		override, err := readYAMLMap(f)
		if err != nil {
			return "", err
		}
		values = coalesce(values, override)
	}
	if err := validateSchema(chartDir, values); err != nil {
		return "", err
	}

	// Like Helm: a chart's kubeVersion constraint must admit the target cluster's version.
	if meta.KubeVersion != "" {
		constraint, err := semver.NewConstraint(meta.KubeVersion)
		if err != nil {
			return "", fmt.Errorf("Chart.yaml: kubeVersion %q: %w", meta.KubeVersion, err)
		}
		version, err := semver.NewVersion(kubeVersion)
		if err != nil {
			return "", fmt.Errorf("--kube-version %q: %w", kubeVersion, err)
		}
		if !constraint.Check(version) {
			return "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", meta.KubeVersion, kubeVersion)
		}
	}
	major, minor := "1", "31"
	if m := regexp.MustCompile(`^v?(\d+)\.(\d+)`).FindStringSubmatch(kubeVersion); m != nil {
		major, minor = m[1], m[2]
	}
	top := map[string]interface{}{
		"Values":  values,
		"Chart":   meta,
		"Release": Release{Name: releaseName, Namespace: namespace, IsInstall: true, Revision: 1, Service: "Helm"},
		"Capabilities": Capabilities{
			KubeVersion: KubeVersion{Version: kubeVersion, Major: major, Minor: minor, GitVersion: kubeVersion},
			APIVersions: VersionSet{"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1",
				"rbac.authorization.k8s.io/v1", "autoscaling/v2"},
			HelmVersion: map[string]string{"version": "v3.16.0"},
		},
	}

	templatesDir := filepath.Join(chartDir, "templates")
	var names []string
	err = filepath.Walk(templatesDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		names = append(names, path)
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)

	root := template.New("gotpl")
	root.Option("missingkey=zero")
	funcs := funcMap()
	includedDepth := map[string]int{}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if includedDepth[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		includedDepth[name]++
		defer func() { includedDepth[name]-- }()
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	root.Funcs(funcs)

	var keys []string
	for _, path := range names {
		rel, _ := filepath.Rel(chartDir, path)
		key := filepath.ToSlash(filepath.Join(meta.Name, rel))
		data, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if _, err := root.New(key).Parse(string(data)); err != nil {
			return "", err
		}
		keys = append(keys, key)
	}

	var manifests []manifest
	notes := ""
	for _, key := range keys {
		base := filepath.Base(key)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notesOnly {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": key, "BasePath": filepath.ToSlash(filepath.Join(meta.Name, "templates"))}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, key, data); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			notes = text
			continue
		}
		for _, doc := range sepRe.Split(text, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			// A document of comments only is kept, as Helm keeps it (with no kind: sorted last).
			var parsed interface{}
			if err := yaml.Unmarshal([]byte(doc), &parsed); err != nil {
				return "", fmt.Errorf("YAML parse error on %s: %w", key, err)
			}
			kind := ""
			if m := kindRe.FindStringSubmatch(doc); m != nil {
				kind = m[1]
			}
			manifests = append(manifests, manifest{source: key, kind: kind, body: strings.TrimSpace(doc)})
		}
	}
	if notesOnly {
		return notes, nil
	}

	rank := func(kind string) int {
		for i, k := range installOrder {
			if k == kind {
				return i
			}
		}
		return len(installOrder)
	}
	sort.SliceStable(manifests, func(i, j int) bool { return rank(manifests[i].kind) < rank(manifests[j].kind) })
	var out strings.Builder
	for _, m := range manifests {
		out.WriteString("---\n# Source: " + m.source + "\n" + m.body + "\n")
	}
	return out.String(), nil
}
